"""What hangs off subscriptions and customers: groups, balances, notes, custom fields."""

from __future__ import annotations

from bisect import bisect_right
from typing import TYPE_CHECKING, ClassVar

from .billing import Subscriptions
from .data import ChildFactory, Dataset, Factory, Record, Row, later
from .pools import (
    FIRST_NAMES,
    LAST_NAMES,
    UID_SPACE,
    encode_uid,
    nth_name,
    scramble,
)

if TYPE_CHECKING:
    import random

# --- subscription groups ----------------------------------------------------------------


class SubscriptionGroups(ChildFactory):
    """Groups of subscriptions billed together, keyed by uid (grp_...).

    Seeded as children of their primary subscription; a subscription is in one group
    at most.
    """

    columns = ("customer_id", "created_at", "primary_id", "second_id", "third_id")
    parent = "subscriptions"
    parent_column = "primary_id"
    per_parent = 1
    key_field = "uid"
    pk_ascending = False

    def __init__(self, ds: Dataset, name: str) -> None:
        """An empty table, and no subscription in a group yet."""
        super().__init__(ds, name)
        self._members: set[int] = set()

    def eligible(self, parent_row: int) -> bool:
        """Subscriptions in no group yet (nor deleted)."""
        deleted = self.ds.table("subscriptions").is_deleted(parent_row)
        return parent_row not in self._members and not deleted

    def next_pk(self, rng: random.Random) -> int:
        """The uid number of the next group (uids do not follow creation order)."""
        return scramble(len(self.table) + 2_000_003)

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row | None:
        """A group around a subscription: more of its customer's, else other customers'."""
        subs = self.ds.table("subscriptions")
        if not self.eligible(parent_row):
            return None
        customer = subs.cols["customer_id"][parent_row]
        older = bisect_right(subs.cols["created_at"], created)
        others: list[int] = []
        # A bounded random search: no index by customer over 500k subscriptions.
        for _ in range(200):
            r = rng.randrange(older)
            same = subs.cols["customer_id"][r] == customer
            if same and self.eligible(r) and r != parent_row and r not in others:
                others.append(r)
                if len(others) == 2:
                    break
        # None found: a group whose customer pays for another customer's subscription.
        for _ in range(0 if others else 10):
            r = rng.randrange(older)
            if self.eligible(r) and r != parent_row:
                others.append(r)
                break
        if not others:
            return None
        members = [parent_row, *others]
        self._members.update(members)
        ids = [subs.pk[r] for r in members] + [None]
        return {
            "pk": pk,
            "customer_id": customer,
            "created_at": created,
            "primary_id": ids[0],
            "second_id": ids[1],
            "third_id": ids[2],
        }

    def key(self, row: int) -> str:
        """The uid, e.g. grp_952mvqcnk53wq."""
        return encode_uid("grp_", self.table.pk[row])

    def members(self, row: int) -> list[int]:
        """Ids of the group's subscriptions, primary first."""
        cols = self.table.cols
        return [cols[c][row] for c in ("primary_id", "second_id", "third_id") if self.get(row, c)]

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A ListSubscriptionGroupsItem per the spec; balances when included."""
        subs = self.ds.factory("subscriptions", Subscriptions)
        # A deleted subscription has left its group (a deleted primary takes it along).
        rows = [subs.table.row_of(m, deleted=True) for m in self.members(row)]
        rows = [r for r in rows if not subs.table.is_deleted(r)]
        members = [subs.table.pk[r] for r in rows]
        primary = rows[0]
        customers = {subs.table.cols["customer_id"][r] for r in rows}
        record: Record = {
            "uid": self.key(row),
            "scheme": 1,
            "customer_id": self.table.cols["customer_id"][row],
            "payment_profile_id": members[0] + 40_000_000,  # the primary's card
            "subscription_ids": sorted(members),
            "primary_subscription_id": members[0],
            "next_assessment_at": subs.ts(primary, "next_assessment_at"),
            "state": subs.state(primary),
            "cancel_at_end_of_period": subs.get(primary, "delayed_cancel_at") is not None,
        }
        if "account_balances" in flags:
            record["account_balances"] = self._balances(members, rows)
        record["group_type"] = "single_customer" if len(customers) == 1 else "multiple_customers"
        return record

    def _balances(self, members: list[int], rows: list[int]) -> Record:
        prepayments = self.ds.factory("prepayments", Prepayments)
        credits = self.ds.factory("service_credits", ServiceCredits)
        due = sum(self.ds.table("subscriptions").cols["balance_in_cents"][r] for r in rows)

        def balance(cents: int) -> Record:
            return {
                "balance_in_cents": cents,
                "automatic_balance_in_cents": None,
                "remittance_balance_in_cents": None,
            }

        return {
            "prepayments": balance(sum(prepayments.remaining(m) for m in members)),
            "service_credits": balance(sum(credits.balance(m) for m in members)),
            "open_invoices": {
                "balance_in_cents": due,
                "automatic_balance_in_cents": due,
                "remittance_balance_in_cents": 0,
            },
            "pending_discounts": balance(0),
        }


# --- children of a subscription -------------------------------------------------------------


class _OfSubscription(ChildFactory):
    """Records listed per subscription: /subscriptions/{subscription_id}/..."""

    parent = "subscriptions"
    parent_column = "subscription_id"
    path_param = "subscription_id"

    def base(self, pk: int, created: int, parent_row: int) -> Row:
        """The key, the parent and the creation time."""
        subscription_id = self.ds.table("subscriptions").pk[parent_row]
        return {"pk": pk, "subscription_id": subscription_id, "created_at": created}


_PAYMENT_TYPES = ("check", "cash", "money_order", "ach", "paypal_account", "credit_card", "other")
"""How a prepayment was paid, by the index a `method` column holds."""
PAYMENT_TYPE_COUNT = len(_PAYMENT_TYPES)


def prepayment(factory: Factory, row: int) -> Record:
    """What a subscription's and a group's prepayment show alike: amounts, payment, date.

    The factory's table has `amount`, `remaining` and `method` columns.
    """
    t = factory.table
    method = _PAYMENT_TYPES[t.cols["method"][row]]
    external = method != "credit_card"
    return {
        "id": t.pk[row],
        "amount_in_cents": t.cols["amount"][row],
        "remaining_amount_in_cents": t.cols["remaining"][row],
        "details": f"{method.replace('_', ' ')} received" if external else "",
        "external": external,
        "payment_type": method,
        "created_at": factory.ts(row, "created_at"),
    }


class Prepayments(_OfSubscription):
    """Money paid ahead, drawn down by later invoices."""

    columns = ("subscription_id", "created_at", "amount", "remaining", "refunded", "method")
    first_pk = 17_000

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row:
        """An amount, partly used up or refunded by now."""
        amount = rng.choice((2000, 5000, 10000, 25000))
        used = rng.choice((0, 0, amount // 2, amount))
        refunded = (amount - used) if used < amount and rng.random() < 0.1 else 0
        return {
            **self.base(pk, created, parent_row),
            "amount": amount,
            "remaining": amount - used - refunded,
            "refunded": refunded,
            "method": rng.randrange(len(_PAYMENT_TYPES)),
        }

    def remaining(self, subscription_id: int) -> int:
        """What is left of a subscription's prepayments."""
        col = self.table.cols["remaining"]
        return sum(col[r] for r in self.children_of("subscription_id", subscription_id))

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A Prepayment per the spec."""
        t = self.table
        paid = prepayment(self, row)
        return {
            **paid,
            "subscription_id": t.cols["subscription_id"][row],
            "refunded_amount_in_cents": t.cols["refunded"][row],
            "memo": "Prepayment for the coming year" if paid["external"] else "Card prepayment",
        }


class ServiceCredits(_OfSubscription):
    """Entries of a subscription's service credit account: credits, then debits by invoices."""

    columns = ("subscription_id", "created_at", "amount", "debit", "ending_balance", "invoice")
    first_pk = 60

    def balance(self, subscription_id: int) -> int:
        """A subscription's service credit balance: its newest entry's ending balance."""
        rows = self.children_of("subscription_id", subscription_id)
        return self.table.cols["ending_balance"][rows[-1]] if rows else 0

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row:
        """A credit, or a debit when there is a balance to draw from."""
        values = self.base(pk, created, parent_row)
        balance = self.balance(values["subscription_id"] or 0)
        debit = balance > 0 and rng.random() < 0.5
        amount = rng.randint(1, balance // 100) * 100 if debit else rng.choice((1100, 2200, 3300))
        invoice = None
        invoices = self.ds.table("invoices")
        if debit and self.ds.cfg.invoicing == "relationship" and len(invoices):
            invoice = invoices.pk[self.ds.pick("invoices", created, rng)]
        return {
            **values,
            "amount": amount,
            "debit": int(debit),
            "ending_balance": balance - amount if debit else balance + amount,
            "invoice": invoice,
        }

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A ServiceCredit per the spec's list response (ServiceCredit1)."""
        t = self.table
        invoice = self.get(row, "invoice")
        debit = bool(t.cols["debit"][row])
        return {
            "id": t.pk[row],
            "amount_in_cents": t.cols["amount"][row],
            "ending_balance_in_cents": t.cols["ending_balance"][row],
            "entry_type": "Debit" if debit else "Credit",
            "memo": "Applied to invoice" if debit else "Service credit for downtime",
            "invoice_uid": None if invoice is None else encode_uid("inv_", invoice),
            "remaining_balance_in_cents": self.balance(t.cols["subscription_id"][row]),
            "created_at": self.ts(row, "created_at"),
        }


_NOTES = (
    "Customer asked for annual invoicing.",
    "Called about a failed payment; card updated.",
    "Upgrade discussed with the account manager.",
    "Do not cancel without manager approval.",
    "Prefers contact by email.",
)


class SubscriptionNotes(_OfSubscription):
    """Notes staff leave on a subscription."""

    columns = ("subscription_id", "created_at", "updated_at", "sticky")
    first_pk = 4

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row:
        """A note, maybe edited since."""
        return {
            **self.base(pk, created, parent_row),
            "updated_at": later(rng, created, horizon),
            "sticky": int(rng.random() < 0.2),
        }

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Edit the text."""
        self.set_extra(row, body=f"{rng.choice(_NOTES)} (edited)")
        return {}

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A SubscriptionNote per the spec."""
        t = self.table
        return {
            "body": _NOTES[self.rng(row).randrange(len(_NOTES))],
            "created_at": self.ts(row, "created_at"),
            "id": t.pk[row],
            "sticky": bool(t.cols["sticky"][row]),
            "subscription_id": t.cols["subscription_id"][row],
            "updated_at": self.ts(row, "updated_at"),
        }


# --- custom fields: metafields and their values -----------------------------------------

# (name, input type, allowed values)
_METAFIELDS: tuple[tuple[str, str, tuple[str, ...] | None], ...] = (
    ("Region", "dropdown", ("AMER", "EMEA", "APAC")),
    ("Account manager", "text", None),
    ("Tier", "radio", ("Gold", "Silver", "Bronze")),
    ("Contract ID", "text", None),
    ("Credits used", "balance_tracker", None),
    ("Color", "dropdown", ("Red", "Green", "Blue")),
)


class Metafields(Factory):
    """The custom fields defined for one kind of resource (subscriptions or customers)."""

    columns = ("created_at",)
    catalog = True
    metadata: ClassVar[str]
    """The collection holding the values."""

    def definition(self, row: int) -> tuple[str, str, tuple[str, ...] | None]:
        """Name, input type and allowed values."""
        _, kind, values = _METAFIELDS[row % len(_METAFIELDS)]
        return nth_name([m[0] for m in _METAFIELDS], row), kind, values

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A Metafield per the spec."""
        pk = self.table.pk[row]
        name, kind, values = self.definition(row)
        metadata = self.ds.factories[self.metadata]
        return {
            "id": pk,
            "name": name,
            "scope": {
                "csv": "1",
                "invoices": "1" if kind == "dropdown" else "0",
                "statements": "0",
                "portal": "1" if kind == "radio" else "0",
                "public_show": "0",
                "public_edit": "0",
                "hosted": [],
            },
            "data_count": len(metadata.children_of("metafield_id", pk)),
            "input_type": kind,
            "enum": None if values is None else list(values),
        }


class SubscriptionMetafields(Metafields):
    """Custom fields of subscriptions."""

    first_pk = 3_000
    metadata = "subscription_metadata"


class CustomerMetafields(Metafields):
    """Custom fields of customers."""

    first_pk = 4_000
    metadata = "customer_metadata"


class Metadata(ChildFactory):
    """Values of custom fields, one per (resource, metafield).

    The rows show no updated_at, yet the list filters on it: it lives in a column only.
    """

    columns = ("resource_id", "metafield_id", "created_at", "updated_at", "deleted_at")
    parent_column = "resource_id"
    metafields: ClassVar[str]
    churns = True

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row | None:
        """A value for a field the resource has no value for yet."""
        fields = self.ds.table(self.metafields)
        available = bisect_right(fields.cols["created_at"], created)
        resource_id = self.ds.table(self.parent).pk[parent_row]
        column = self.table.cols["metafield_id"]
        used = {column[r] for r in self.children_of("resource_id", resource_id)}
        free = [fields.pk[r] for r in range(available) if fields.pk[r] not in used]
        if not free:
            return None
        return {
            "pk": pk,
            "resource_id": resource_id,
            "metafield_id": rng.choice(free),
            "created_at": created,
            "updated_at": later(rng, created, horizon),
        }

    def soft_delete(self, row: int, now: int) -> None:
        """Set deleted_at (and the kept updated_at) to now: listed only with_deleted=true."""
        if self.get(row, "deleted_at") is not None:
            raise ValueError(f"{self.name} {self.key(row)} is deleted already")
        self.table.update(row, {"deleted_at": now, "updated_at": now})

    def editable(self, row: int) -> bool:
        """Not a deleted value."""
        return self.get(row, "deleted_at") is None

    def value(self, row: int, rng: random.Random) -> str:
        """A value that suits the field's input type."""
        fields = self.ds.factory(self.metafields, Metafields)
        field = fields.table.row_of(self.table.cols["metafield_id"][row])
        _, kind, values = fields.definition(field)
        if values is not None:
            return rng.choice(values)
        if kind == "balance_tracker":
            return str(rng.randrange(500))
        if kind == "text" and rng.random() < 0.5:
            return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        return f"C-{rng.randrange(UID_SPACE) % 100_000:05d}"

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Change the value (a dropdown's may need a few draws to differ)."""
        current = self.render(row)["value"]
        for _ in range(10):
            value = self.value(row, rng)
            if value != current:
                break
        self.set_extra(row, value=value)
        return {}

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A Metadata per the spec (no timestamps but deleted_at)."""
        fields = self.ds.factory(self.metafields, Metafields)
        metafield_id = self.table.cols["metafield_id"][row]
        name, _, _ = fields.definition(fields.table.row_of(metafield_id))
        return {
            "id": self.table.pk[row],
            "value": self.value(row, self.rng(row)),
            "resource_id": self.table.cols["resource_id"][row],
            "name": name,
            "deleted_at": self.ts(row, "deleted_at"),
            "metafield_id": metafield_id,
        }


class SubscriptionMetadata(Metadata):
    """Custom field values of subscriptions."""

    parent = "subscriptions"
    metafields = "subscription_metafields"
    first_pk = 300_000


class CustomerMetadata(Metadata):
    """Custom field values of customers."""

    parent = "customers"
    metafields = "customer_metafields"
    first_pk = 400_000
