"""Components on subscriptions, and their allocations and usages."""

from __future__ import annotations

from bisect import bisect_right
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .billing import Subscriptions
from .data import ChildFactory, Dataset, Record, Row, add_months, later
from .pools import FAMILY_NAMES, nth_name, slug
from .pricing import (
    COMPONENT_KINDS,
    EVENT_BASED,
    METERED,
    ON_OFF,
    PREPAID,
    QUANTITY,
    Components,
)

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping

    from .table import Scope

_USAGE_MEMOS = ("Nightly batch", "API usage sync", None, None)


class SubscriptionComponents(ChildFactory):
    """The components of subscriptions: one row per (subscription, component)."""

    columns = (
        "subscription_id", "component_id", "created_at", "updated_at", "kind", "quantity",
        "balance",
    )  # fmt: skip
    parent = "subscriptions"
    parent_column = "subscription_id"
    first_pk = 1_180_000
    churns = True

    def __init__(self, ds: Dataset, name: str) -> None:
        """An empty table; remembers which component kinds it has, to cover them all."""
        super().__init__(ds, name)
        self._kinds: set[int] = set()

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row | None:
        """A component not yet on the subscription; early rows cover every kind."""
        components = self.ds.factory("components", Components)
        ct = components.table
        available = bisect_right(ct.cols["created_at"], created)
        if not available:
            return None
        # Components 0-4 have one kind each (see Components.make).
        missing = [r for r in range(min(available, 5)) if ct.cols["kind"][r] not in self._kinds]
        sub_id = self.ds.table("subscriptions").pk[parent_row]
        taken = {
            self.table.cols["component_id"][r] for r in self.children_of(self.parent_column, sub_id)
        }
        for attempt in range(10):
            component = missing[0] if missing and not attempt else rng.randrange(available)
            if ct.pk[component] not in taken:
                break
        else:
            return None
        kind = ct.cols["kind"][component]
        self._kinds.add(kind)
        quantity = {QUANTITY: rng.randint(1, 50), ON_OFF: rng.randint(0, 1)}.get(kind, 0)
        return {
            "pk": pk,
            "subscription_id": sub_id,
            "component_id": ct.pk[component],
            "created_at": created,
            "updated_at": later(rng, created, horizon),
            "kind": kind,
            "quantity": quantity,
            "balance": {QUANTITY: quantity, ON_OFF: 0}.get(kind, rng.randrange(1000)),
        }

    def find(self, subscription_id: int, component_id: int) -> int:
        """The row of a component on a subscription (KeyError if it is not on it)."""
        for r in self.children_of(self.parent_column, subscription_id):
            if self.table.cols["component_id"][r] == component_id:
                return r
        raise KeyError((subscription_id, component_id))

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Allocate a new quantity (a new allocation), or report more usage."""
        kind = self.table.cols["kind"][row]
        if kind in (QUANTITY, ON_OFF):
            allocations = self.ds.factory("allocations", Allocations)
            values = allocations.make_child(rng, allocations.next_pk(rng), now, now, row)
            if values is not None:
                allocations.table.append(values)
            return {}
        return {"balance": self.table.cols["balance"][row] + rng.randint(1, 200)}

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A SubscriptionComponent per the spec; subscription and history when included."""
        t = self.table
        ds = self.ds
        components = ds.factory("components", Components)
        component_id = t.cols["component_id"][row]
        component = components.table.row_of(component_id)
        family_id = components.table.cols["family_id"][component]
        families = ds.factories["product_families"]
        name, unit = components.name_and_unit(component)
        kind = t.cols["kind"][row]
        quantity = t.cols["quantity"][row]
        metered = kind in (METERED, PREPAID, EVENT_BASED)
        record: Record = {
            "id": t.pk[row],
            "name": name,
            "kind": COMPONENT_KINDS[kind],
            "unit_name": unit,
            "enabled": quantity > 0 if kind == ON_OFF else False,
            "unit_balance": t.cols["balance"][row],
            "currency": "USD",
            "allocated_quantity": quantity,
            "pricing_scheme": components.scheme(component),
            "component_id": component_id,
            "component_handle": slug(name),
            "subscription_id": t.cols["subscription_id"][row],
            "recurring": True,
            "upgrade_charge": None if metered else "prorated",
            "downgrade_credit": None if metered else "none",
            "archived_at": None,
            "price_point_id": components.price_point(component),
            "price_point_handle": "original",
            "price_point_type": "default",
            "price_point_name": "Original",
            "product_family_id": family_id,
            "product_family_handle": slug(nth_name(FAMILY_NAMES, families.table.row_of(family_id))),
            "created_at": self.ts(row, "created_at"),
            "updated_at": self.ts(row, "updated_at"),
            "use_site_exchange_rate": True,
            "description": f"{name}, billed per {unit}" if kind != ON_OFF else name,
            "allow_fractional_quantities": False,
        }
        subs = ds.factory("subscriptions", Subscriptions)
        sub = subs.table.row_of(t.cols["subscription_id"][row])
        if "subscription" in flags:
            record["subscription"] = {
                "state": subs.state(sub),
                "updated_at": subs.ts(sub, "updated_at"),
            }
        if "historic_usages" in flags:
            record["historic_usages"] = self._history(row, sub) if metered else []
        record.update({"display_on_hosted_page": True, "interval": 1, "interval_unit": "month"})
        return record

    def _history(self, row: int, sub: int) -> list[Record]:
        """Usage totals of the billing periods before the current one."""
        rng = self.rng(row)
        subs = self.ds.table("subscriptions")
        start = subs.get(sub, "current_period_started_at")
        created = self.table.cols["created_at"][row]
        periods = []
        for back in (1, 2):
            if start is None:
                break
            begin = add_months(start, -back)
            if begin < created:
                break
            periods.append(
                {
                    "total_usage_quantity": rng.randint(0, 2000),
                    "billing_period_starts_at": self.ds.clock.iso(begin),
                    "billing_period_ends_at": self.ds.clock.iso(add_months(start, 1 - back)),
                }
            )
        return periods


class _ComponentChildren(ChildFactory):
    """Records of one component on one subscription: listed per (subscription, component)."""

    parent = "subscription_components"
    parent_column = "subscription_component_id"
    kinds: frozenset[int]
    """The component kinds that have such records; others list none."""

    def eligible(self, parent_row: int) -> bool:
        """Only components of the right kinds."""
        return self.ds.table(self.parent).cols["kind"][parent_row] in self.kinds

    def scope(self, params: Mapping[str, int | str]) -> Scope:
        """The records of the subscription component the path names."""
        owner = self.ds.factory(self.parent, SubscriptionComponents)
        row = owner.find(int(params["subscription_id"]), int(params["component_id"]))
        return self.parent_column, owner.table.pk[row]

    def path_params(self, row: int) -> dict[str, int | str]:
        """The subscription and the component."""
        cols = self.table.cols
        return {
            "subscription_id": cols["subscription_id"][row],
            "component_id": cols["component_id"][row],
        }

    def base(self, pk: int, created: int, parent_row: int) -> Row:
        """The references every record carries."""
        parents = self.ds.table(self.parent)
        return {
            "pk": pk,
            "subscription_component_id": parents.pk[parent_row],
            "subscription_id": parents.cols["subscription_id"][parent_row],
            "component_id": parents.cols["component_id"][parent_row],
            "created_at": created,
        }

    def component(self, row: int) -> tuple[Components, int]:
        """The components factory and the row of this record's component."""
        components = self.ds.factory("components", Components)
        return components, components.table.row_of(self.table.cols["component_id"][row])


def utc_z(ts: int) -> str:
    """An instant as 2012-11-20T22:00:37Z, the form the spec gives allocation timestamps."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Allocations(_ComponentChildren):
    """Quantity changes of quantity-based and on/off components; each sets its parent's."""

    columns = (
        "subscription_component_id", "subscription_id", "component_id", "created_at",
        "quantity", "previous_quantity",
    )  # fmt: skip
    kinds = frozenset({QUANTITY, ON_OFF})
    # Maxio leaves allocation_id out of old allocations (the spec's own example).
    key_field = ("subscription_id", "component_id", "timestamp", "previous_quantity", "quantity")
    sometimes_missing = ("allocation_id",)
    first_pk = 2_370_000

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row | None:
        """A new quantity, which becomes the subscription component's."""
        parents = self.ds.table(self.parent)
        previous = parents.cols["quantity"][parent_row]
        if parents.cols["kind"][parent_row] == ON_OFF:
            quantity = 1 - min(previous, 1)
        else:
            quantity = rng.choice([q for q in (1, 2, 5, 10, 25, 50) if q != previous])
        # The parent's updated_at stays: Maxio is not known to touch it for a child.
        parents.update(
            parent_row,
            {
                "quantity": quantity,
                "balance": quantity if parents.cols["kind"][parent_row] == QUANTITY else 0,
            },
        )
        return {
            **self.base(pk, created, parent_row),
            "quantity": quantity,
            "previous_quantity": previous,
        }

    def key(self, row: int) -> tuple[int, int, str, int, int]:
        """The served key (see key_field): allocation_id is not always served."""
        cols = self.table.cols
        return (
            cols["subscription_id"][row],
            cols["component_id"][row],
            utc_z(cols["created_at"][row]),
            cols["previous_quantity"][row],
            cols["quantity"][row],
        )

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """An Allocation per the spec."""
        t = self.table
        rng = self.rng(row)
        components, component = self.component(row)
        name, _ = components.name_and_unit(component)
        price_point = components.price_point(component)
        quantity, previous = t.cols["quantity"][row], t.cols["previous_quantity"][row]
        upgrade = quantity > previous
        charge = (quantity - previous) * components.table.cols["unit_price"][component]
        charged = upgrade and rng.random() < 0.5
        created = t.cols["created_at"][row]
        return {
            "allocation_id": t.pk[row],
            "component_id": t.cols["component_id"][row],
            "component_handle": slug(name),
            "subscription_id": t.cols["subscription_id"][row],
            "quantity": quantity,
            "previous_quantity": previous,
            "memo": rng.choice(("Added seats", "Plan change", "Recoding allocation", None)),
            "timestamp": utc_z(created),
            "created_at": self.ds.clock.iso(created),
            "proration_upgrade_scheme": "prorate-attempt-capture" if charged else "no-prorate",
            "proration_downgrade_scheme": "no-prorate",
            "price_point_id": price_point,
            "price_point_name": "Original",
            "price_point_handle": "original",
            "interval": 1,
            "interval_unit": "month",
            "previous_price_point_id": price_point,
            "accrue_charge": upgrade and not charged,
            "initiate_dunning": False,
            "upgrade_charge": "prorated" if charged else "none",
            "downgrade_credit": "none",
            "payment": {
                "id": t.pk[row] + 90_000_000,
                "amount_in_cents": charge,
                "success": True,
                "memo": f"Payment for {name}",
            }
            if charged
            else None,
            "expires_at": None,  # set on prepaid allocations only
            "used_quantity": None,
            "charge_id": t.pk[row] + 9_000_000 if charged else None,
        }


class Usages(_ComponentChildren):
    """Usage reported on metered and prepaid components; each adds to the unit balance."""

    columns = (
        "subscription_component_id", "subscription_id", "component_id", "created_at", "quantity",
    )  # fmt: skip
    kinds = frozenset({METERED, PREPAID})
    first_pk = 178_534_000

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row:
        """Some units, added to the subscription component's balance."""
        parents = self.ds.table(self.parent)
        quantity = rng.choice((1, 5, 10, 20, 100, 250))
        parents.update(parent_row, {"balance": parents.cols["balance"][parent_row] + quantity})
        return {**self.base(pk, created, parent_row), "quantity": quantity}

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A Usage per the spec."""
        t = self.table
        rng = self.rng(row)
        components, component = self.component(row)
        name, _ = components.name_and_unit(component)
        quantity = t.cols["quantity"][row]
        prepaid = components.table.cols["kind"][component] == PREPAID
        return {
            "id": t.pk[row],
            "memo": rng.choice(_USAGE_MEMOS),
            "created_at": self.ts(row, "created_at"),
            "price_point_id": components.price_point(component),
            "quantity": f"{quantity}.0",
            "overage_quantity": quantity // 5 if prepaid and rng.random() < 0.3 else 0,
            "component_id": t.cols["component_id"][row],
            "component_handle": slug(name),
            "subscription_id": t.cols["subscription_id"][row],
        }
