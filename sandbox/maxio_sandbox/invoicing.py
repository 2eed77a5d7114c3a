"""Relationship invoicing beyond invoices: invoice events and proforma invoices."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from .billing import INVOICE_FLAGS, INVOICE_STATUSES, Customers, Invoices, baseline_line_item
from .catalog import Products
from .data import SITE_ID, ChildFactory, Factory, Record, Row
from .pools import FAMILY_NAMES, UID_SPACE, encode_uid, money, nth_name, scramble

if TYPE_CHECKING:
    import random

INVOICE_EVENT_TYPES = (
    "issue_invoice", "apply_payment", "void_invoice", "apply_credit_note",
    "change_invoice_status",
)  # fmt: skip
ISSUE, PAYMENT, VOID, CREDIT_NOTE, STATUS_CHANGE = range(len(INVOICE_EVENT_TYPES))
_ALL_FLAGS = frozenset(INVOICE_FLAGS)
SELLER: Record = {
    "name": "General Goods",
    "address": {
        "street": "123 General Goods Way",
        "line2": "Apt. 10",
        "city": "Boston",
        "state": "MA",
        "zip": "02120",
        "country": "US",
    },
    "phone": "555-555-1212",
    "logo_url": None,
}


class InvoiceEvents(Factory):
    """What happened to invoices, oldest first: immutable, so changes only add events.

    The embedded invoice is rendered as it is now, not as it was at the event.
    """

    columns = ("invoice_id", "created_at", "kind", "from_status", "to_status")
    first_pk = 80
    churns = True

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """An event that fits what became of an older invoice."""
        invoices = self.ds.factory("invoices", Invoices)
        row = self.ds.pick("invoices", created, rng)
        status = invoices.status(row)
        kinds = [ISSUE, ISSUE]
        if status == "paid":
            kinds.append(PAYMENT)
        elif status == "voided":
            kinds.append(VOID)
        elif status in ("open", "pending", "processing"):
            kinds.append(STATUS_CHANGE)
        if invoices.table.cols["credit_amount"][row]:
            kinds.append(CREDIT_NOTE)
        return {
            "pk": pk,
            "invoice_id": invoices.table.pk[row],
            "created_at": created,
            "kind": rng.choice(kinds),
        }

    def log_status_change(self, invoice_row: int, change: tuple[str, str], now: int) -> int:
        """Append a change_invoice_status event (from, to) of an invoice; returns its id."""
        invoices = self.ds.table("invoices")
        row = self.table.append(
            {
                "pk": self.next_pk(self.ds.mutation_rng),
                "invoice_id": invoices.pk[invoice_row],
                "created_at": now,
                "kind": STATUS_CHANGE,
                "from_status": INVOICE_STATUSES.index(change[0]),
                "to_status": INVOICE_STATUSES.index(change[1]),
            }
        )
        return self.table.pk[row]

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """An InvoiceEvent per the spec: id, type, data, timestamp and the whole invoice."""
        t = self.table
        invoices = self.ds.factory("invoices", Invoices)
        invoice_row = invoices.table.row_of(t.cols["invoice_id"][row])
        return {
            "id": t.pk[row],
            "event_type": INVOICE_EVENT_TYPES[t.cols["kind"][row]],
            "event_data": self._data(row, invoices, invoice_row),
            "timestamp": self.ts(row, "created_at"),
            "invoice": invoices.render(invoice_row, _ALL_FLAGS),
        }

    def _data(self, row: int, invoices: Invoices, invoice_row: int) -> Record:
        """The event_data of the event's type."""
        kind = self.table.cols["kind"][row]
        rng = self.rng(row)
        cols = invoices.table.cols
        total, credit = cols["total_amount"][invoice_row], cols["credit_amount"][invoice_row]
        when = self.ts(row, "created_at")
        if kind == PAYMENT:
            return {
                "consolidation_level": "none",
                "memo": "Renewal payment",
                "original_amount": money(total - credit),
                "applied_amount": money(total - credit),
                "transaction_time": when,
                "payment_method": {
                    "card_brand": "visa",
                    "card_expiration": f"{rng.randint(1, 12):02d}/{rng.randint(2026, 2031)}",
                    "last_four": None,
                    "masked_card_number": f"XXXX-XXXX-XXXX-{rng.randrange(10000):04d}",
                    "type": "credit_card",
                },
                "transaction_id": 160_000_000 + cols["number"][invoice_row] * 10 + 3,
                "parent_invoice_number": None,
                "remaining_prepayment_amount": None,
                "prepayment": False,
                "external": False,
            }
        if kind == VOID:
            return {
                "credit_note_attributes": None,
                "memo": "Voided: issued in error",
                "applied_amount": money(total),
                "transaction_time": when,
                "is_advance_invoice": False,
                "reason": "Duplicate invoice",
            }
        if kind == CREDIT_NOTE:
            return {
                "uid": encode_uid("cdt_", rng.randrange(UID_SPACE)),
                "credit_note_number": str(rng.randint(1, 999)),
                "credit_note_uid": encode_uid("cn_", rng.randrange(UID_SPACE)),
                "original_amount": money(credit),
                "applied_amount": money(credit),
                "transaction_time": when,
                "memo": "Goodwill credit",
                "role": "general",
                "consolidated_invoice": False,
                "applied_credit_notes": [],
            }
        if kind == STATUS_CHANGE:
            old, new = self.get(row, "from_status"), self.get(row, "to_status")
            return {
                "gateway_trans_id": f"{rng.getrandbits(40):010x}",
                "amount": money(total),
                # Seeded events (no stored statuses) took an open invoice to processing.
                "from_status": "open" if old is None else INVOICE_STATUSES[old],
                "to_status": "processing" if new is None else INVOICE_STATUSES[new],
                "consolidation_level": "none",
            }
        return {
            "consolidation_level": "none",
            "from_status": "draft",
            "to_status": "open",
            "due_amount": money(total - credit),
            "total_amount": money(total),
        }


PROFORMA_FLAGS = ("line_items", "discounts", "taxes", "credits", "payments", "custom_fields")
_PROFORMA_STATUSES = ("draft", "voided", "archived")


class ProformaInvoices(ChildFactory):
    """Previews of a subscription's next invoice, keyed by uid (pf_...)."""

    columns = (
        "subscription_id", "customer_id", "product_id", "created_at", "number", "status",
        "subtotal", "discount", "tax",
    )  # fmt: skip
    parent = "subscriptions"
    parent_column = "subscription_id"
    path_param = "subscription_id"
    key_field = "uid"
    pk_ascending = False

    def next_pk(self, rng: random.Random) -> int:
        """The uid number of the next proforma invoice."""
        return scramble(len(self.table) + 3_000_017)

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row:
        """A preview of the subscription's product price, maybe discounted and taxed."""
        subs = self.ds.table("subscriptions")
        products = self.ds.table("products")
        product_id = subs.cols["product_id"][parent_row]
        subtotal = products.cols["price_in_cents"][products.row_of(product_id)]
        discount = subtotal // 10 if rng.random() < 0.2 else 0
        tax = (subtotal - discount) * 825 // 10_000 if rng.random() < 0.4 else 0
        return {
            "pk": pk,
            "subscription_id": subs.pk[parent_row],
            "customer_id": subs.cols["customer_id"][parent_row],
            "product_id": product_id,
            "created_at": created,
            "number": len(self.table) + 1,
            "status": rng.choices(range(len(_PROFORMA_STATUSES)), (80, 10, 10))[0],
            "subtotal": subtotal,
            "discount": discount,
            "tax": tax,
        }

    def key(self, row: int) -> str:
        """The uid, e.g. pf_8cd6j3tq5bq5c."""
        return encode_uid("pf_", self.table.pk[row])

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A ProformaInvoice per the spec; sub-arrays only when flagged."""
        ds = self.ds
        t = self.table
        rng = self.rng(row)
        uid = self.key(row)
        customers = ds.factory("customers", Customers)
        customer_id = t.cols["customer_id"][row]
        p = customers.profile(customers.table.row_of(customer_id))
        products = ds.factory("products", Products)
        product_row = products.table.row_of(t.cols["product_id"][row])
        family_row = ds.table("product_families").row_of(
            products.table.cols["family_id"][product_row]
        )
        subtotal, discount, tax = (t.cols[c][row] for c in ("subtotal", "discount", "tax"))
        total = subtotal - discount + tax
        address = {
            "street": p["address"] or None,
            "line2": None,
            "city": p["city"] or None,
            "state": p["state"] or None,
            "zip": p["zip"] or None,
            "country": p["country"] or None,
        }
        created = t.cols["created_at"][row]
        day = ds.clock.local_date(created)
        record: Record = {
            "uid": uid,
            "site_id": SITE_ID,
            "customer_id": customer_id,
            "subscription_id": t.cols["subscription_id"][row],
            "number": t.cols["number"][row],
            "sequence_number": t.cols["number"][row],
            "created_at": ds.clock.iso(created),
            "delivery_date": day.isoformat(),
            "status": _PROFORMA_STATUSES[t.cols["status"][row]],
            "collection_method": "automatic",
            "payment_instructions": "Make checks payable to Acme, Inc.",
            "currency": "USD",
            "consolidation_level": "none",
            "product_name": products.name_of(product_row),
            "product_family_name": nth_name(FAMILY_NAMES, family_row),
            "role": rng.choice(("proforma", "proforma_adhoc", "proforma_automatic")),
            "seller": SELLER,
            "customer": {
                "chargify_id": customer_id,
                "first_name": p["first_name"],
                "last_name": p["last_name"],
                "organization": p["organization"] or None,
                "email": p["email"],
                "vat_number": None,
                "reference": p["reference"],
            },
            "memo": "Thank you for your business.",
            "billing_address": address,
            "shipping_address": dict(address),
            "subtotal_amount": money(subtotal),
            "discount_amount": money(discount),
            "tax_amount": money(tax),
            "total_amount": money(total),
            "credit_amount": money(0),
            "paid_amount": money(0),
            "refund_amount": money(0),
            "due_amount": money(total),
        }
        line = encode_uid("li_", rng.randrange(UID_SPACE))
        if "line_items" in flags:
            end = date.fromordinal(day.toordinal() + 30).isoformat()
            record["line_items"] = [
                baseline_line_item(
                    products, product_row, uid=line, amounts=(subtotal, discount, tax),
                    period=(day.isoformat(), end), transaction_id=None,
                )
            ]  # fmt: skip
        if "discounts" in flags:
            record["discounts"] = [
                {
                    "uid": encode_uid("dli_", rng.randrange(UID_SPACE)),
                    "title": "Coupon: 10% off",
                    "code": "WELCOME10",
                    "source_type": "Coupon",
                    "discount_type": "percentage",
                    "eligible_amount": money(subtotal),
                    "discount_amount": money(discount),
                    "line_item_breakouts": [
                        {
                            "uid": line,
                            "eligible_amount": money(subtotal),
                            "discount_amount": money(discount),
                        }
                    ],
                }
            ][: 1 if discount else 0]
        if "taxes" in flags:
            record["taxes"] = [
                {
                    "uid": encode_uid("tli_", rng.randrange(UID_SPACE)),
                    "title": "Sales Tax",
                    "source_type": "Tax",
                    "percentage": "8.25",
                    "taxable_amount": money(subtotal - discount),
                    "tax_amount": money(tax),
                    "line_item_breakouts": [
                        {
                            "uid": line,
                            "taxable_amount": money(subtotal - discount),
                            "tax_amount": money(tax),
                            "tax_exempt_amount": "0.00",
                        }
                    ],
                }
            ][: 1 if tax else 0]
        for name in ("credits", "payments"):
            if name in flags:
                record[name] = []  # a preview: nothing is applied yet
        if "custom_fields" in flags:
            record["custom_fields"] = []
        record["public_url"] = (
            f"https://www.chargifypay.com/proforma/{uid}?token={rng.getrandbits(96):024x}"
        )
        record["available_actions"] = {
            "send_email": {
                "can_execute": record["status"] == "draft",
                "url": f"https://{ds.cfg.subdomain}.chargify.com/proforma_invoices/{uid}/deliver",
            }
        }
        return record
