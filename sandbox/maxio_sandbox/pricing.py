"""Components and the price points of products and components."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .catalog import Products
from .data import DAY, Factory, Record, Row, later
from .pools import FAMILY_NAMES, money, nth_name, slug

if TYPE_CHECKING:
    import random

COMPONENT_KINDS = (
    "metered_component", "quantity_based_component", "on_off_component",
    "prepaid_usage_component", "event_based_component",
)  # fmt: skip
METERED, QUANTITY, ON_OFF, PREPAID, EVENT_BASED = range(len(COMPONENT_KINDS))
_COMPONENT_NAMES = (
    (("API Calls", "call"), ("Text Messages", "message"), ("Compute Hours", "hour")),
    (("Seats", "seat"), ("IP Addresses", "address"), ("Extra Users", "user")),
    (("Premium Support", "on/off"), ("Annual Support Services", "on/off")),
    (("Prepaid Storage", "GB"), ("Prepaid Minutes", "minute")),
    (("Events Ingested", "event"), ("Webhook Deliveries", "delivery")),
)
PRICING_SCHEMES = ("per_unit", "tiered", "volume", "stairstep")
PRICE_POINT_TYPES = ("default", "catalog", "custom")
DEFAULT, CATALOG, CUSTOM = range(len(PRICE_POINT_TYPES))
# (name, interval in months, price factor in percent) of price points added to a catalog
_EXTRA_PRICE_POINTS = (("Annual", 12, 1000), ("Promo", 1, 80), ("Partner", 1, 90))
_PROMO = 1
EUR_PER_100_USD = 92
"""The rate of the site's second currency (site.json lists EUR), for currency_prices."""


def dollars(cents: int) -> str:
    """A price as an invoice shows it, e.g. 1250 -> "$12.50"."""
    return f"${money(cents)}"


class Components(Factory):
    """Components of product families: metered, quantity, on/off, prepaid, event based."""

    # The spec's own example of the list has no updated_at.
    sometimes_missing = ("updated_at",)
    columns = (
        "family_id", "created_at", "updated_at", "kind", "scheme", "unit_price", "taxable",
        "archived_at",
    )  # fmt: skip
    first_pk = 399_850
    catalog = True

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """A component of an older family; the first five cover every kind."""
        families = self.ds.table("product_families")
        row = len(self.table)
        kind = row if row < len(COMPONENT_KINDS) else rng.randrange(len(COMPONENT_KINDS))
        scheme = None
        if kind != ON_OFF:
            scheme = 0 if kind in (PREPAID, EVENT_BASED) else rng.choice((0, 0, 1, 2, 3))
        unit = rng.choice((25, 100, 200, 500)) if kind != ON_OFF else rng.choice((3500, 10000))
        return {
            **super().make(rng, pk, created, horizon),
            "family_id": families.pk[self.ds.pick("product_families", created, rng)],
            "kind": kind,
            "scheme": scheme,
            "unit_price": unit,
            "taxable": int(rng.random() < 0.3),
        }

    def kind(self, row: int) -> str:
        """The component's kind, e.g. metered_component."""
        return COMPONENT_KINDS[self.table.cols["kind"][row]]

    def name_and_unit(self, row: int) -> tuple[str, str]:
        """The component's name and the name of its unit."""
        pool = _COMPONENT_NAMES[self.table.cols["kind"][row]]
        return nth_name([name for name, _ in pool], row), pool[row % len(pool)][1]

    def scheme(self, row: int) -> str | None:
        """The pricing scheme; None for on/off components."""
        v = self.get(row, "scheme")
        return None if v is None else PRICING_SCHEMES[v]

    def price_point(self, row: int) -> int:
        """The id of the component's default price point."""
        return self.table.pk[row] + 100_000

    def brackets(self, row: int, price_point_id: int, unit_cents: int) -> list[Record]:
        """ComponentPrice brackets of one price point: tiered schemes get two."""
        component_id = self.table.pk[row]
        scheme = self.scheme(row)
        tiers: list[tuple[int, int | None, int]] = [(1, None, unit_cents)]
        if scheme not in (None, "per_unit"):
            tiers = [(1, 100, unit_cents), (101, None, unit_cents * 4 // 5)]
        return [
            {
                "id": price_point_id * 10 + i,
                "component_id": component_id,
                "starting_quantity": start,
                "ending_quantity": end,
                "unit_price": money(cents),
                "price_point_id": price_point_id,
                "formatted_unit_price": dollars(cents),
                "segment_id": None,
            }
            for i, (start, end, cents) in enumerate(tiers)
        ]

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A Component per the spec."""
        t = self.table
        pk = t.pk[row]
        kind = self.table.cols["kind"][row]
        name, unit = self.name_and_unit(row)
        family_id = t.cols["family_id"][row]
        family_row = self.ds.table("product_families").row_of(family_id)
        family = nth_name(FAMILY_NAMES, family_row)
        unit_cents = t.cols["unit_price"][row]
        scheme = self.scheme(row)
        price_point = self.price_point(row)
        prices = self.ds.factories["component_price_points"]
        metered = kind in (METERED, PREPAID, EVENT_BASED)
        record: Record = {
            "id": pk,
            "name": name,
            "handle": slug(name),
            "pricing_scheme": scheme,
            "unit_name": unit,
            "unit_price": money(unit_cents) if scheme in (None, "per_unit") else None,
            "product_family_id": family_id,
            "product_family_name": family,
            "product_family_handle": slug(family),
            "price_per_unit_in_cents": None,
            "kind": COMPONENT_KINDS[kind],
            "archived": self.get(row, "archived_at") is not None,
            "description": f"{name}, billed per {unit}" if kind != ON_OFF else name,
            "default_price_point_id": price_point,
            "overage_prices": self.brackets(row, price_point, unit_cents * 3 // 2)
            if kind == PREPAID
            else [],
            "prices": self.brackets(row, price_point, unit_cents),
            "price_point_count": len(prices.children_of("owner_id", pk)),
            "price_points_url": f"https://{self.ds.cfg.subdomain}.chargify.com/components/{pk}/price_points",
            "default_price_point_name": "Original",
            "taxable": bool(t.cols["taxable"][row]),
            "tax_code": "D0000000" if t.cols["taxable"][row] else None,
            "recurring": True,
            "upgrade_charge": None if metered else "prorated",
            "downgrade_credit": None if metered else "none",
            "created_at": self.ts(row, "created_at"),
            "updated_at": self.ts(row, "updated_at"),
            "archived_at": self.ts(row, "archived_at"),
            "hide_date_range_on_invoice": False,
            "allow_fractional_quantities": False,
            "item_category": "Business Software",
            "use_site_exchange_rate": True,
            "accounting_code": f"CMP-{pk % 1000:03d}",
            "event_based_billing_metric_id": 7_000 + row if kind == EVENT_BASED else None,
            "interval": 1,
            "interval_unit": "month",
            "unspsc_code": None,
        }
        if "include_features" in flags:
            record["features"] = []
        return record


class _PricePoints(Factory):
    """Price points: one default per catalog item (seeded first), then later additions."""

    owner: str
    """The collection whose items the price points price."""
    columns = (
        "owner_id", "created_at", "updated_at", "kind", "variant", "subscription_id", "archived_at",
    )  # fmt: skip
    catalog = True

    def owner_price_point(self, owner_row: int) -> int:
        """The id of an item's default price point."""
        raise NotImplementedError

    def seed(self, count: int, rng: random.Random) -> None:
        """Every item's default price point, then `count` minus those more."""
        owners = self.ds.table(self.owner)
        for r in range(len(owners)):
            created = owners.cols["created_at"][r]
            self.table.append(
                {
                    "pk": self.owner_price_point(r),
                    "owner_id": owners.pk[r],
                    "created_at": created,
                    "updated_at": later(rng, created, self.ds.end),
                    "kind": DEFAULT,
                    "variant": None,
                    "subscription_id": None,
                }
            )
        extra = count - len(owners)
        if extra <= 0 or not len(owners):
            return
        # Added after the item it prices, within the catalog's first weeks.
        first = max(owners.cols["created_at"])
        last = max(first, min(self.ds.end, self.ds.start + 30 * DAY))
        for created in sorted(rng.randint(first, last) for _ in range(extra)):
            self.table.append(self.make(rng, self.next_pk(rng), created, self.ds.end))

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """A catalog price point of an older item, or one subscription's custom price."""
        owners = self.ds.table(self.owner)
        values: Row = {
            **super().make(rng, pk, created, horizon),
            "owner_id": owners.pk[self.ds.pick(self.owner, created, rng)],
            "kind": CATALOG,
            "variant": rng.randrange(len(_EXTRA_PRICE_POINTS)),
            "subscription_id": None,
        }
        subs = self.ds.table("subscriptions")
        if rng.random() < 0.2 and len(subs):
            sub = self.ds.pick("subscriptions", created, rng)
            values["kind"] = CUSTOM
            values["subscription_id"] = subs.pk[sub]
            if self.owner == "products":  # a custom price of the subscription's own product
                values["owner_id"] = subs.cols["product_id"][sub]
        elif values["variant"] == _PROMO and created < horizon and rng.random() < 0.5:
            # A promotion that has ended; archiving is an update.
            values["archived_at"] = values["updated_at"] = rng.randint(created + 1, horizon)
        return values

    def identity(self, row: int) -> tuple[str, str | None, int, int]:
        """Name, handle, interval in months and price factor in percent."""
        kind = self.table.cols["kind"][row]
        if kind == DEFAULT:
            return "Original", "original", 0, 100
        name, months, factor = _EXTRA_PRICE_POINTS[self.table.cols["variant"][row]]
        if kind == CUSTOM:
            return "Custom", None, months, factor
        return name, f"{slug(name)}-{self.table.pk[row]}", months, factor


class ProductPricePoints(_PricePoints):
    """Product price points: each product's default, catalog alternatives, custom prices."""

    owner = "products"
    first_pk = 7_300_000

    def owner_price_point(self, owner_row: int) -> int:
        """Products know the id of their default price point."""
        return self.ds.factory("products", Products).price_point(owner_row)

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A ProductPricePoint per the spec."""
        t = self.table
        products = self.ds.table("products")
        product_id = t.cols["owner_id"][row]
        product = products.row_of(product_id)
        name, handle, months, factor = self.identity(row)
        base_months = products.cols["interval"][product]
        price = products.cols["price_in_cents"][product] * factor // 100
        trial = products.get(product, "trial_days")
        kind = t.cols["kind"][row]
        record: Record = {
            "id": t.pk[row],
            "name": name,
            "handle": handle,
            "price_in_cents": price,
            "interval": months or base_months,
            "interval_unit": "month",
            "trial_price_in_cents": 0 if trial else None,
            "trial_interval": trial,
            "trial_interval_unit": "day" if trial else None,
            "trial_type": "no_obligation" if trial else None,
            "introductory_offer": False,
            "initial_charge_in_cents": None,
            "initial_charge_after_trial": False,
            "expiration_interval": None,
            "expiration_interval_unit": "never",
            "product_id": product_id,
            "archived_at": self.ts(row, "archived_at"),
            "created_at": self.ts(row, "created_at"),
            "updated_at": self.ts(row, "updated_at"),
            "use_site_exchange_rate": kind != CUSTOM,
            "type": PRICE_POINT_TYPES[kind],
            "tax_included": False,
            "subscription_id": self.get(row, "subscription_id"),
        }
        if "currency_prices" in flags:
            eur = price * EUR_PER_100_USD // 100
            record["currency_prices"] = [
                {
                    "id": t.pk[row] * 10,
                    "currency": "EUR",
                    "price": eur / 100,  # a number here, unlike components' strings
                    "formatted_price": f"€{money(eur)}",
                    "price_id": t.pk[row] * 10,
                    "price_point_id": t.pk[row],
                    "product_price_point_id": t.pk[row],
                    "role": "baseline",
                }
            ]
        return record


class ComponentPricePoints(_PricePoints):
    """Component price points: each component's default, alternatives, custom prices."""

    owner = "components"
    first_pk = 499_850

    def owner_price_point(self, owner_row: int) -> int:
        """Components know the id of their default price point."""
        return self.ds.factory("components", Components).price_point(owner_row)

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A ComponentPricePoint per the spec."""
        t = self.table
        pk = t.pk[row]
        components = self.ds.factory("components", Components)
        component_id = t.cols["owner_id"][row]
        component = components.table.row_of(component_id)
        name, handle, months, factor = self.identity(row)
        unit = components.table.cols["unit_price"][component] * factor // 100
        kind = t.cols["kind"][row]
        prepaid = components.table.cols["kind"][component] == PREPAID
        scheme = components.scheme(component)
        record: Record = {
            "id": pk,
            "type": PRICE_POINT_TYPES[kind],
            "default": kind == DEFAULT,
            "name": name,
            "pricing_scheme": scheme or "per_unit",
            "component_id": component_id,
            "handle": handle,
            "archived_at": self.ts(row, "archived_at"),
            "created_at": self.ts(row, "created_at"),
            "updated_at": self.ts(row, "updated_at"),
            "prices": components.brackets(component, pk, unit),
            "use_site_exchange_rate": kind != CUSTOM,
            "subscription_id": self.get(row, "subscription_id"),
            "tax_included": False,
            "interval": months or None,
            "interval_unit": "month" if months else None,
            "overage_prices": components.brackets(component, pk, unit * 3 // 2) if prepaid else [],
            "overage_pricing_scheme": "per_unit" if prepaid else None,
            "renew_prepaid_allocation": prepaid,
            "rollover_prepaid_remainder": False,
            "expiration_interval": None,
            "expiration_interval_unit": "never" if prepaid else None,
        }
        if "currency_prices" in flags:
            record["currency_prices"] = [
                {
                    "id": bracket["id"],
                    "currency": "EUR",
                    "price": money(unit * EUR_PER_100_USD // 100),
                    "formatted_price": f"€{money(unit * EUR_PER_100_USD // 100)}",
                    "price_id": bracket["id"],
                    "price_point_id": pk,
                }
                for bracket in record["prices"][:1]
            ]
        return record
