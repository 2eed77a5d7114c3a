"""Legacy statement billing: statements, transactions and legacy invoices."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .billing import Customers
from .catalog import Products
from .data import (
    DAY,
    SITE_ID,
    Factory,
    Record,
    Row,
    later,
)

if TYPE_CHECKING:
    import random

# --- legacy statement billing ---------------------------------------------------------


class Statements(Factory):
    """Legacy statements: one billing period of a subscription."""

    columns = (
        "subscription_id", "created_at", "updated_at", "opened_at", "closed_at", "settled_at",
        "starting_balance_in_cents", "ending_balance_in_cents", "total_in_cents",
    )  # fmt: skip
    first_pk = 79_221_000
    churns = True

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """A statement opened at creation, closed and settled later."""
        subs = self.ds.table("subscriptions")
        sub = self.ds.pick("subscriptions", created, rng)
        closed = created + rng.choice((1, 60, 30 * DAY))
        settled = closed + rng.choice((0, 1, 3 * DAY)) if rng.random() < 0.85 else None
        closed_at = closed if closed <= horizon else None
        settled_at = settled if closed_at and settled and settled <= horizon else None
        total = rng.choice((0, 1000, 2500, 4250, 9900))
        return {
            "pk": pk,
            "subscription_id": subs.pk[sub],
            "created_at": created,
            "updated_at": max(t for t in (created, closed_at, settled_at) if t is not None),
            "opened_at": created,
            "closed_at": closed_at,
            "settled_at": settled_at,
            "starting_balance_in_cents": 0,
            "ending_balance_in_cents": 0 if settled_at else total,
            "total_in_cents": total,
        }

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Close, settle, or edit the memo."""
        if self.get(row, "closed_at") is None:
            return {"closed_at": now}
        if self.get(row, "settled_at") is None:
            return {"settled_at": now, "ending_balance_in_cents": 0}
        self.set_extra(row, memo=f"Memo updated {self.ds.clock.iso(now)}")
        return {}

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A Legacy-Statement per the spec, minus the HTML and text views."""
        ds = self.ds
        subs = ds.table("subscriptions")
        customers = ds.factory("customers", Customers)
        sub_row = subs.row_of(self.table.cols["subscription_id"][row], deleted=True)
        customer_row = customers.table.row_of(subs.cols["customer_id"][sub_row], deleted=True)
        p = customers.profile(customer_row)
        record: Record = {
            "id": self.table.pk[row],
            "closed_at": self.ts(row, "closed_at"),
            "created_at": self.ts(row, "created_at"),
        }
        for kind in ("billing", "shipping"):
            record.update(
                {
                    f"customer_{kind}_address": p["address"],
                    f"customer_{kind}_address_2": p["address_2"],
                    f"customer_{kind}_city": p["city"],
                    f"customer_{kind}_country": p["country"],
                    f"customer_{kind}_state": p["state"],
                    f"customer_{kind}_zip": p["zip"],
                }
            )
        record.update(
            {
                "customer_first_name": p["first_name"],
                "customer_last_name": p["last_name"],
                "customer_organization": p["organization"],
                "ending_balance_in_cents": self.get(row, "ending_balance_in_cents"),
                "future_payments": [],
                "memo": "We thank you for your continued business!",
                "opened_at": self.ts(row, "opened_at"),
                "settled_at": self.ts(row, "settled_at"),
                "starting_balance_in_cents": self.get(row, "starting_balance_in_cents"),
                "subscription_id": self.table.cols["subscription_id"][row],
                "updated_at": self.ts(row, "updated_at"),
                "total_in_cents": self.get(row, "total_in_cents"),
                "transactions": [],
                "events": [],
            }
        )
        return record


_TRANSACTION_TYPES = ("charge", "payment", "credit", "adjustment", "refund")
_TRANSACTION_KINDS = {"charge": "baseline", "credit": "manual", "adjustment": "manual"}


class Transactions(Factory):
    """Legacy transactions: immutable, so changes to the site only add new ones."""

    columns = (
        "statement_id",
        "subscription_id",
        "customer_id",
        "product_id",
        "created_at",
        "type",
        "amount_in_cents",
    )
    first_pk = 162_640_000
    churns = True

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """A transaction on an older statement."""
        ds = self.ds
        statements, subs = ds.table("statements"), ds.table("subscriptions")
        st = ds.pick("statements", created, rng)
        sub = subs.row_of(statements.cols["subscription_id"][st], deleted=True)
        return {
            "pk": pk,
            "statement_id": statements.pk[st],
            "subscription_id": subs.pk[sub],
            "customer_id": subs.cols["customer_id"][sub],
            "product_id": subs.cols["product_id"][sub],
            "created_at": created,
            "type": rng.choices(range(len(_TRANSACTION_TYPES)), (45, 45, 4, 3, 3))[0],
            "amount_in_cents": rng.choice((1000, 2000, 2500, 4900, 9900)),
        }

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A Legacy-Transaction per the spec."""
        rng = self.rng(row)
        t = self.table
        kind = _TRANSACTION_TYPES[t.cols["type"][row]]
        amount = t.cols["amount_in_cents"][row]
        is_payment = kind in ("payment", "refund")
        charge = kind == "charge"
        products = self.ds.factory("products", Products)
        product_name = products.name_of(products.table.row_of(t.cols["product_id"][row]))
        record: Record = {
            "id": t.pk[row],
            "subscription_id": t.cols["subscription_id"][row],
            "type": kind.capitalize(),
            "kind": _TRANSACTION_KINDS.get(kind),
            "transaction_type": kind,
            "success": True,
            "amount_in_cents": amount,
            "memo": f"{product_name}: {'Renewal payment' if is_payment else kind}",
            "created_at": self.ts(row, "created_at"),
            "starting_balance_in_cents": amount if is_payment else 0,
            "ending_balance_in_cents": 0 if is_payment else amount,
            "gateway_used": "bogus" if is_payment else None,
            "gateway_transaction_id": f"{rng.randrange(10**5)}" if is_payment else None,
            "gateway_order_id": None,
            "payment_id": None,
            "product_id": t.cols["product_id"][row],
            "tax_id": None,
            "component_id": None,
            "statement_id": t.cols["statement_id"][row],
            "customer_id": t.cols["customer_id"][row],
            "item_name": product_name if charge else None,
            "parent_id": None,
            "role": None,
            "currency": "USD",
            "exchange_rate": 1,
        }
        if is_payment:
            record.update(
                {
                    "card_number": f"XXXX-XXXX-XXXX-{rng.randrange(10)}",
                    "card_expiration": f"{rng.randint(1, 12):02d}/{rng.randint(2025, 2031)}",
                    "card_type": "bogus",
                    "refunded_amount_in_cents": 0,
                }
            )
        if charge:
            record.update(
                {
                    "original_amount_in_cents": amount,
                    "discount_amount_in_cents": 0,
                    "taxable_amount_in_cents": None,
                    "taxations": [],
                }
            )
        return record


_LEGACY_STATES = ("paid", "unpaid", "partial", "archived")


class LegacyInvoices(Factory):
    """Statement-billing invoices: integer ids, charges and payments inline."""

    columns = (
        "statement_id",
        "subscription_id",
        "customer_id",
        "created_at",
        "updated_at",
        "state",
        "total",
        "paid_at",
    )
    first_pk = 1_227_000
    churns = True

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """An invoice for an older statement, mostly paid."""
        ds = self.ds
        statements, subs = ds.table("statements"), ds.table("subscriptions")
        st = ds.pick("statements", created, rng)
        sub = subs.row_of(statements.cols["subscription_id"][st], deleted=True)
        state = rng.choices(range(3), (80, 15, 5))[0]
        paid_at = later(rng, created, horizon) if _LEGACY_STATES[state] == "paid" else None
        return {
            "pk": pk,
            "statement_id": statements.pk[st],
            "subscription_id": subs.pk[sub],
            "customer_id": subs.cols["customer_id"][sub],
            "created_at": created,
            "updated_at": paid_at or created,
            "state": state,
            "total": rng.choice((1000, 4000, 5000, 9900)),
            "paid_at": paid_at,
        }

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Pay an unpaid invoice, or renumber a paid one."""
        if _LEGACY_STATES[self.table.cols["state"][row]] != "paid":
            return {"state": 0, "paid_at": now}
        self.set_extra(row, number=f"{row + 1:06d}-A")
        return {}

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A Legacy-Invoice per the spec, with charges and payments inline."""
        t = self.table
        state = _LEGACY_STATES[t.cols["state"][row]]
        total = t.cols["total"][row]
        due = 0 if state == "paid" else total // (2 if state == "partial" else 1)
        created = self.ts(row, "created_at")
        sub_id = t.cols["subscription_id"][row]
        customer_id = t.cols["customer_id"][row]
        charge = {
            "created_at": created,
            "subscription_id": sub_id,
            "type": "Charge",
            "memo": "Basic Plan",
            "kind": "baseline",
            "amount_in_cents": total,
            "ending_balance_in_cents": total,
            "success": True,
            "id": t.pk[row] * 100 + 1,
            "payment_id": None,
            "product_id": self.ds.table("products").pk[0],
            "transaction_type": "charge",
            "gateway_transaction_id": None,
            "gateway_order_id": None,
            "starting_balance_in_cents": 0,
            "component_id": None,
            "tax_id": None,
            "customer_id": customer_id,
        }
        payments = []
        if total - due:
            payments.append(
                {
                    **charge,
                    "created_at": self.ts(row, "paid_at") or created,
                    "type": "Payment",
                    "memo": "Payment",
                    "kind": None,
                    "amount_in_cents": total - due,
                    "ending_balance_in_cents": due,
                    "starting_balance_in_cents": total,
                    "id": t.pk[row] * 100 + 2,
                    "transaction_type": "payment",
                    "gateway_transaction_id": "53433",
                    "card_number": "XXXX-XXXX-XXXX-1",
                    "card_expiration": "10/2030",
                    "card_type": "bogus",
                }
            )
        return {
            "id": t.pk[row],
            "subscription_id": sub_id,
            "statement_id": t.cols["statement_id"][row],
            "site_id": SITE_ID,
            "state": state,
            "total_amount_in_cents": total,
            "paid_at": self.ts(row, "paid_at"),
            "created_at": created,
            "updated_at": self.ts(row, "updated_at"),
            "amount_due_in_cents": due,
            "number": f"{row + 1:06d}",
            "charges": [charge],
            "payments_and_credits": payments,
        }
