"""Customers, their subscriptions, and relationship-invoicing invoices."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from .catalog import Products
from .data import (
    DAY,
    SITE_ID,
    Factory,
    Record,
    Row,
    add_months,
    current_period,
    enum_rank,
    later,
)
from .pools import (
    CANCEL_MESSAGES,
    CARD_TYPES,
    COUPON_CODES,
    FAMILY_NAMES,
    FIRST_NAMES,
    LAST_NAMES,
    LOCALES,
    ORGANIZATIONS,
    PLACES,
    STREETS,
    UID_SPACE,
    VAULTS,
    encode_uid,
    money,
    nth_name,
    scramble,
    slug,
)

if TYPE_CHECKING:
    import random

# --- customers and subscriptions ------------------------------------------------------


class Customers(Factory):
    """Customers; subscriptions, invoices and statements show their names and addresses."""

    first_pk = 14_126_000
    churns = True

    def profile(self, row: int) -> Record:
        """Name, contact and address: shared with subscriptions, invoices and statements."""
        rng = self.rng(row, stream=1)
        pk = self.table.pk[row]
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, state, state_name, zip_code, country, country_name = rng.choice(PLACES)
        has_address = rng.random() < 0.8
        profile: Record = {
            "first_name": first,
            "last_name": last,
            "email": f"{slug(first)}.{slug(last)}.{pk}@example.com",
            "organization": rng.choice(ORGANIZATIONS),
            "reference": f"cust-{pk}" if rng.random() < 0.6 else None,
            "phone": f"555-{rng.randrange(1000):03d}-{rng.randrange(10000):04d}",
            "address": f"{rng.randint(1, 9999)} {rng.choice(STREETS)}" if has_address else "",
            "address_2": "",
            "city": city if has_address else "",
            "state": state if has_address else "",
            "state_name": state_name if has_address else None,
            "zip": zip_code if has_address else "",
            "country": country if has_address else "",
            "country_name": country_name if has_address else None,
        }
        extra = self.table.extra.get(row)
        if extra:
            profile.update((k, v) for k, v in extra.items() if k in profile)
        return profile

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Change the email, phone or organization."""
        field = rng.choice(("email", "phone", "organization"))
        pk = self.table.pk[row]
        value = {
            "email": f"changed.{pk}.{now}@example.com",
            "phone": f"555-{rng.randrange(1000):03d}-{rng.randrange(10000):04d}",
            "organization": rng.choice(ORGANIZATIONS[3:]),
        }[field]
        self.set_extra(row, **{field: value})
        return {}

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A Customer per the spec."""
        rng = self.rng(row)
        pk = self.table.pk[row]
        p = self.profile(row)
        created = self.table.cols["created_at"][row]
        updated = self.table.cols["updated_at"][row]
        portal = rng.random() < 0.5
        vat = rng.random() < 0.1
        return {
            "first_name": p["first_name"],
            "last_name": p["last_name"],
            "email": p["email"],
            "cc_emails": "billing@example.com, ap@example.com" if rng.random() < 0.2 else None,
            "organization": p["organization"],
            "reference": p["reference"],
            "id": pk,
            "created_at": self.ds.clock.iso(created),
            "updated_at": self.ds.clock.iso(updated),
            "address": p["address"],
            "address_2": p["address_2"],
            "city": p["city"],
            "state": p["state"],
            "state_name": p["state_name"],
            "zip": p["zip"],
            "country": p["country"],
            "country_name": p["country_name"],
            "phone": p["phone"],
            "verified": rng.choice((None, False, True)),
            "portal_customer_created_at": self.ds.clock.iso(created) if portal else None,
            "portal_invite_last_sent_at": self.ds.clock.iso(rng.randint(created, updated))
            if portal
            else None,
            "portal_invite_last_accepted_at": None,
            "tax_exempt": rng.random() < 0.05,
            "surcharging": rng.random() < 0.1,
            "vat_number": f"DE{rng.randrange(10**9):09d}" if vat else None,
            "vat_country": "DE" if vat else None,
            "entity_identifier_kind": "vat_eu" if vat else None,
            "entity_identifier_value": None,
            "parent_id": self.table.pk[rng.randrange(row)] if row and rng.random() < 0.05 else None,
            "locale": rng.choice(LOCALES),
            "default_subscription_group_uid": None,
            "salesforce_id": f"0015e00000{pk % 10**8:08d}" if rng.random() < 0.1 else None,
            "tax_exempt_reason": None,
            "default_auto_renewal_profile_id": None,
            "maxioid": f"cus_{pk}",
            "branding_theme_id": None,
        }


SUBSCRIPTION_STATES = (
    "active", "canceled", "past_due", "expired", "soft_failure", "unpaid", "on_hold",
    "paused", "suspended", "trial_ended", "trialing",
)  # fmt: skip
_STATE_WEIGHTS = (72, 10, 4, 3, 2, 1, 1, 1, 1, 1, 4)
_STATE = enum_rank(SUBSCRIPTION_STATES)
_STATE_NAME = {v: k for k, v in _STATE.items()}
_LIVE_STATES = frozenset(SUBSCRIPTION_STATES) - {"canceled", "expired"}


class Subscriptions(Factory):
    """Subscriptions with a consistent life cycle: trial, periods, cancellation."""

    columns = (
        "customer_id", "product_id", "created_at", "updated_at", "activated_at",
        "canceled_at", "expires_at", "trial_started_at", "trial_ended_at",
        "current_period_started_at", "current_period_ends_at", "next_assessment_at",
        "delayed_cancel_at", "state", "balance_in_cents", "total_revenue_in_cents", "coupon",
    )  # fmt: skip
    first_pk = 23_277_000
    churns = True

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """A subscription of an older customer to an older product, billed up to the horizon."""
        ds = self.ds
        customers, products = ds.table("customers"), ds.table("products")
        customer = ds.pick("customers", created, rng)
        product = ds.pick("products", created, rng)
        price = products.cols["price_in_cents"][product]
        months = products.cols["interval"][product]
        trial_days = products.get(product, "trial_days")
        state = rng.choices(SUBSCRIPTION_STATES, _STATE_WEIGHTS)[0]
        trial_start = trial_end = None
        activated: int | None = created
        if trial_days and rng.random() < 0.7:
            trial_start, trial_end = created, created + trial_days * DAY
            activated = trial_end
        if activated is None or activated > horizon:
            state, activated = "trialing", None
        elif state == "trialing":
            state = "active"
        stop = canceled = expires = None
        if activated is None:
            periods, period_start, period_end = 0, created, trial_end
        else:
            if state in ("canceled", "expired"):
                stop = rng.randint(activated, horizon)
            k, period_start, period_end = current_period(activated, months, stop or horizon)
            periods = k + 1
        if state == "canceled":
            canceled = stop
        elif state == "expired":
            expires = stop
        elif activated is not None and rng.random() < 0.05:
            expires = add_months(activated, 36)
        events = (created, activated, period_start, stop)
        last_event = max(t for t in events if t is not None and t <= horizon)
        return {
            "pk": pk,
            "customer_id": customers.pk[customer],
            "product_id": products.pk[product],
            "created_at": created,
            "updated_at": min(horizon, last_event + rng.randrange(120)),
            "activated_at": activated,
            "canceled_at": canceled,
            "expires_at": expires,
            "trial_started_at": trial_start,
            "trial_ended_at": trial_end,
            "current_period_started_at": period_start,
            "current_period_ends_at": period_end,
            "next_assessment_at": period_end if state in _LIVE_STATES else None,
            "delayed_cancel_at": period_end if state == "active" and rng.random() < 0.02 else None,
            "state": _STATE[state],
            "balance_in_cents": price if state in ("past_due", "unpaid", "soft_failure") else 0,
            "total_revenue_in_cents": price * periods,
            "coupon": rng.randrange(len(COUPON_CODES)) if rng.random() < 0.1 else None,
        }

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Fall past due, pay up, or change the balance."""
        state = _STATE_NAME[self.table.cols["state"][row]]
        price = self._price(row)
        if state == "active":
            return {"state": _STATE["past_due"], "balance_in_cents": price}
        if state in ("past_due", "soft_failure", "unpaid"):
            return {"state": _STATE["active"], "balance_in_cents": 0}
        balance = self.table.cols["balance_in_cents"][row]
        return {"balance_in_cents": balance + rng.choice((500, 1000, 2500))}

    def state(self, row: int) -> str:
        """The subscription's state, e.g. active."""
        return _STATE_NAME[self.table.cols["state"][row]]

    def _price(self, row: int) -> int:
        products = self.ds.table("products")
        return products.cols["price_in_cents"][products.row_of(self.table.cols["product_id"][row])]

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A Subscription per the spec, embedding customer, product and payment profile."""
        ds = self.ds
        rng = self.rng(row)
        pk = self.table.pk[row]
        state = _STATE_NAME[self.table.cols["state"][row]]
        customers = ds.factory("customers", Customers)
        customer_id = self.table.cols["customer_id"][row]
        customer_row = customers.table.row_of(customer_id)
        products = ds.factory("products", Products)
        product_row = products.table.row_of(self.table.cols["product_id"][row])
        price = products.table.cols["price_in_cents"][product_row]
        coupon = self.get(row, "coupon")
        created = self.table.cols["created_at"][row]
        payment = rng.choices(("credit_card", "bank_account", None), (85, 10, 5))[0]
        profile = customers.profile(customer_row)
        record: Record = {
            "id": pk,
            "state": state,
            "balance_in_cents": self.get(row, "balance_in_cents"),
            "total_revenue_in_cents": self.get(row, "total_revenue_in_cents"),
            "product_price_in_cents": price,
            "product_version_number": 1,
            "current_period_ends_at": self.ts(row, "current_period_ends_at"),
            "next_assessment_at": self.ts(row, "next_assessment_at"),
            "trial_started_at": self.ts(row, "trial_started_at"),
            "trial_ended_at": self.ts(row, "trial_ended_at"),
            "activated_at": self.ts(row, "activated_at"),
            "expires_at": self.ts(row, "expires_at"),
            "created_at": ds.clock.iso(created),
            "updated_at": self.ts(row, "updated_at"),
            "cancellation_message": rng.choice(CANCEL_MESSAGES) if state == "canceled" else None,
            "cancellation_method": rng.choice(("merchant_ui", "billing_portal", "dunning"))
            if state == "canceled"
            else None,
            "cancel_at_end_of_period": self.get(row, "delayed_cancel_at") is not None,
            "canceled_at": self.ts(row, "canceled_at"),
            "current_period_started_at": self.ts(row, "current_period_started_at"),
            "previous_state": "trialing" if self.get(row, "trial_ended_at") else "active",
            "signup_payment_id": pk + 140_000_000,
            "signup_revenue": money(price),
            "delayed_cancel_at": self.ts(row, "delayed_cancel_at"),
            "coupon_code": None if coupon is None else COUPON_CODES[coupon],
            "snap_day": None,
            "payment_collection_method": "automatic" if payment else "remittance",
            "customer": customers.render(customer_row),
            "product": products.nested(product_row),
        }
        if payment is not None:
            record[payment] = payment_profile(
                payment,
                rng,
                profile_id=pk + 40_000_000,
                customer_id=customer_id,
                p=profile,
                iso=record["created_at"],
            )
        record.update(
            {
                "group": None,
                "payment_type": payment,
                "referral_code": f"{rng.randrange(36**6):06x}" if rng.random() < 0.3 else None,
                "next_product_id": None,
                "next_product_handle": None,
                "coupon_use_count": None if coupon is None else 1,
                "coupon_uses_allowed": None if coupon is None else 12,
                "reason_code": rng.choice(("CUST", "PRICE")) if state == "canceled" else None,
                "automatically_resume_at": None,
                "coupon_codes": [] if coupon is None else [COUPON_CODES[coupon]],
                "offer_id": None,
                "payer_id": self.table.cols["customer_id"][row],
                "current_billing_amount_in_cents": price,
                "product_price_point_id": products.price_point(product_row),
                "product_price_point_type": "default",
                "next_product_price_point_id": None,
                "net_terms": None if payment else 30,
                "stored_credential_transaction_id": None,
                "reference": f"sub-{pk}" if rng.random() < 0.5 else None,
                "on_hold_at": self.ts(row, "updated_at") if state == "on_hold" else None,
                "prepaid_dunning": False,
            }
        )
        if "coupons" in flags:
            record["coupons"] = [] if coupon is None else [_included_coupon(coupon)]
        record.update(
            {
                "dunning_communication_delay_enabled": False,
                "dunning_communication_delay_time_zone": None,
                "receives_invoice_emails": rng.choice((None, True)),
                "locale": rng.choice(LOCALES),
                "currency": "USD",
                "scheduled_cancellation_at": None,
                "credit_balance_in_cents": 0,
                "prepayment_balance_in_cents": 0,
                "prepaid_configuration": None,
            }
        )
        if "self_service_page_token" in flags:
            record["self_service_page_token"] = f"{rng.getrandbits(80):020x}"
        return record


def payment_profile(
    kind: str, rng: random.Random, *, profile_id: int, customer_id: int, p: Record, iso: str
) -> Record:
    """A CreditCardPaymentProfile or BankAccountPaymentProfile for a customer profile."""
    record: Record = {
        "id": profile_id,
        "first_name": p["first_name"],
        "last_name": p["last_name"],
    }
    if kind == "credit_card":
        record.update(
            {
                "masked_card_number": f"XXXX-XXXX-XXXX-{rng.randrange(10000):04d}",
                "card_type": rng.choice(CARD_TYPES),
                "expiration_month": rng.randint(1, 12),
                "expiration_year": rng.randint(2025, 2031),
            }
        )
    record.update(
        {
            "customer_id": customer_id,
            "current_vault": rng.choice(VAULTS),
            "vault_token": f"{rng.getrandbits(48):012x}",
            "billing_address": p["address"] or None,
            "billing_city": p["city"] or None,
            "billing_state": p["state"] or None,
            "billing_zip": p["zip"] or None,
            "billing_country": p["country"] or None,
            "customer_vault_token": None,
            "billing_address_2": None,
        }
    )
    if kind == "credit_card":
        record.update(
            {
                "payment_type": "credit_card",
                "disabled": False,
                "chargify_token": f"tok_{rng.getrandbits(64):016x}",
            }
        )
    else:
        record.update(
            {
                "bank_name": rng.choice(("First Bank", "Credit Union", "Savings & Loan")),
                "masked_bank_routing_number": f"XXXX{rng.randrange(10000):04d}",
                "masked_bank_account_number": f"XXXX{rng.randrange(10000):04d}",
                "bank_account_type": rng.choice(("checking", "savings")),
                "bank_account_holder_type": rng.choice(("personal", "business")),
                "payment_type": "bank_account",
                "verified": True,
            }
        )
    record.update(
        {"site_gateway_setting_id": 1, "gateway_handle": None, "created_at": iso, "updated_at": iso}
    )
    return record


def _included_coupon(index: int) -> Record:
    percent = index % 2 == 0
    return {
        "code": COUPON_CODES[index],
        "use_count": 1,
        "uses_allowed": 12,
        "expires_at": None,
        "recurring": percent,
        "amount_in_cents": None if percent else 500,
        "percentage": "10.0" if percent else None,
    }


# --- relationship invoicing -----------------------------------------------------------

INVOICE_STATUSES = ("draft", "open", "paid", "pending", "voided", "canceled", "processing")
_STATUS = enum_rank(INVOICE_STATUSES)
_STATUS_NAME = {v: k for k, v in _STATUS.items()}
STATUS_CHANGES = {"draft": "open", "pending": "open", "open": "processing", "processing": "paid"}
"""The status change_invoice_status events move an invoice to, from each status."""
INVOICE_FLAGS = (
    "line_items",
    "discounts",
    "taxes",
    "credits",
    "payments",
    "refunds",
    "custom_fields",
)


class Invoices(Factory):
    """Relationship-invoicing invoices: keyed by uid, with no id in the rows."""

    # The spec's own example of the list has no updated_at.
    sometimes_missing = ("updated_at",)
    columns = (
        "number", "subscription_id", "customer_id", "product_id", "created_at", "updated_at",
        "issue_date", "due_date", "paid_date", "status", "remittance", "subtotal_amount",
        "discount_amount", "tax_amount", "credit_amount", "total_amount", "due_amount",
    )  # fmt: skip
    key_field = "uid"
    pk_ascending = False
    churns = True

    def next_pk(self, rng: random.Random) -> int:
        """The uid number of the next invoice (uids do not follow creation order)."""
        return scramble(len(self.table) + 1)

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """An invoice of an older subscription, paid, open or voided by the horizon."""
        ds = self.ds
        subs = ds.table("subscriptions")
        sub = ds.pick("subscriptions", created, rng)
        product_id = subs.cols["product_id"][sub]
        products = ds.table("products")
        price = products.cols["price_in_cents"][products.row_of(product_id)]
        issue = ds.clock.local_date(created).toordinal()
        remittance = rng.random() < 0.2
        due = issue + (30 if remittance else 0)
        subtotal = price * rng.choice((1, 1, 1, 2, 3))
        discount = subtotal // 10 if rng.random() < 0.15 else 0
        tax = (subtotal - discount) * 825 // 10_000 if rng.random() < 0.4 else 0
        total = subtotal - discount + tax
        credit = min(total, 500) if rng.random() < 0.05 else 0
        roll = rng.random()
        status = "paid"
        paid_day: int | None = due + (rng.randrange(20) if remittance else 0)
        horizon_day = ds.clock.local_date(horizon).toordinal()
        if roll < 0.02:
            status, paid_day = "voided", None
        elif roll < 0.04 and horizon - created < 5 * DAY:
            status, paid_day = rng.choice(("draft", "pending")), None
        elif (remittance and roll < 0.3) or (paid_day is not None and paid_day > horizon_day):
            status, paid_day = "open", None
        updated = created
        if paid_day is not None:
            paid_at = ds.clock.day_start(date.fromordinal(paid_day)) + rng.randrange(DAY)
            updated = max(created, min(paid_at, horizon))
        return {
            "pk": pk,
            "number": len(self.table) + 1,
            "subscription_id": subs.pk[sub],
            "customer_id": subs.cols["customer_id"][sub],
            "product_id": product_id,
            "created_at": created,
            "updated_at": updated,
            "issue_date": issue,
            "due_date": due,
            "paid_date": paid_day,
            "status": _STATUS[status],
            "remittance": int(remittance),
            "subtotal_amount": subtotal,
            "discount_amount": discount,
            "tax_amount": tax,
            "credit_amount": credit,
            "total_amount": total,
            "due_amount": total - credit if status in ("open", "pending", "draft") else 0,
        }

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Pay an open invoice, or edit a paid one's memo."""
        status = _STATUS_NAME[self.table.cols["status"][row]]
        if status in ("open", "pending", "draft"):
            return {
                "status": _STATUS["paid"],
                "paid_date": self.ds.clock.local_date(now).toordinal(),
                "due_amount": 0,
            }
        self.set_extra(row, memo=f"Updated {self.ds.clock.iso(now)}")
        return {}

    def key(self, row: int) -> str:
        """The uid, e.g. inv_8htcd29wcq3q6."""
        return encode_uid("inv_", self.table.pk[row])

    def status(self, row: int) -> str:
        """The invoice's status, e.g. paid."""
        return _STATUS_NAME[self.table.cols["status"][row]]

    def change_status(self, row: int, now: int) -> tuple[str, str]:
        """Move an invoice to its next status (open to processing...); (from, to)."""
        old = self.status(row)
        new = STATUS_CHANGES.get(old)
        if new is None:
            raise ValueError(f"an invoice {old} has no status to change to")
        values: Row = {"status": _STATUS[new], "updated_at": now}
        if new == "paid":
            values.update(paid_date=self.ds.clock.local_date(now).toordinal(), due_amount=0)
        self.table.update(row, values)
        return old, new

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """An Invoice per the spec, without id; sub-arrays only when flagged."""
        ds = self.ds
        rng = self.rng(row)
        t = self.table
        number = t.cols["number"][row]
        uid = self.key(row)
        status = _STATUS_NAME[t.cols["status"][row]]
        remittance = bool(t.cols["remittance"][row])
        customers = ds.factory("customers", Customers)
        customer_id = t.cols["customer_id"][row]
        # An invoice outlives a deleted customer, and shows it as it was.
        p = customers.profile(customers.table.row_of(customer_id, deleted=True))
        products = ds.factory("products", Products)
        product_row = products.table.row_of(t.cols["product_id"][row])
        family = ds.factories["product_families"]
        family_row = family.table.row_of(products.table.cols["family_id"][product_row])
        subtotal, discount, tax = (
            t.cols[c][row] for c in ("subtotal_amount", "discount_amount", "tax_amount")
        )
        total, credit, due = (
            t.cols[c][row] for c in ("total_amount", "credit_amount", "due_amount")
        )
        paid = total - credit - due if status == "paid" else 0
        address = {
            "street": p["address"] or None,
            "line2": None,
            "city": p["city"] or None,
            "state": p["state"] or None,
            "zip": p["zip"] or None,
            "country": p["country"] or None,
        }
        created = ds.clock.iso(t.cols["created_at"][row])
        record: Record = {
            "uid": uid,
            "site_id": SITE_ID,
            "customer_id": customer_id,
            "subscription_id": t.cols["subscription_id"][row],
            "number": str(number),
            "sequence_number": number,
            "transaction_time": created,
            "created_at": created,
            "updated_at": self.ts(row, "updated_at"),
            "issue_date": self.day(row, "issue_date"),
            "due_date": self.day(row, "due_date"),
            "paid_date": self.day(row, "paid_date"),
            "status": status,
            "role": rng.choice(("renewal", "renewal", "signup", "adhoc")),
            "parent_invoice_id": None,
            "collection_method": "remittance" if remittance else "automatic",
            "payment_instructions": "Make checks payable to Acme, Inc.",
            "currency": "USD",
            "consolidation_level": "none",
            "parent_invoice_uid": None,
            "subscription_group_id": None,
            "parent_invoice_number": None,
            "group_primary_subscription_id": None,
            "product_name": products.name_of(product_row),
            "product_family_name": nth_name(FAMILY_NAMES, family_row),
            "seller": {
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
            },
            "customer": {
                "chargify_id": customer_id,
                "first_name": p["first_name"],
                "last_name": p["last_name"],
                "organization": p["organization"] or None,
                "email": p["email"],
                "vat_number": None,
                # An optional field: left out, not null, where the customer has none.
                **({"reference": p["reference"]} if p["reference"] else {}),
            },
            "payer": {
                "chargify_id": customer_id,
                "first_name": p["first_name"],
                "last_name": p["last_name"],
                "organization": p["organization"] or None,
                "email": p["email"],
                "vat_number": None,
            },
            "recipient_emails": [p["email"]],
            "net_terms": 30 if remittance else 0,
            "memo": "Payment due within 15 days of receipt."
            if remittance
            else "Thank you for your business.",
            "billing_address": address,
            # A null nested object: no address to ship to.
            "shipping_address": dict(address) if address["street"] else None,
            "subtotal_amount": money(subtotal),
            "discount_amount": money(discount),
            "tax_amount": money(tax),
            "total_amount": money(total),
            "credit_amount": money(credit),
            "debit_amount": money(0),
            "refund_amount": money(0),
            "paid_amount": money(paid),
            "due_amount": money(due),
        }
        if flags:
            self._breakdowns(
                record, row=row, rng=rng, flags=flags, product_row=product_row, paid=paid
            )
        record.update(
            {
                "display_settings": {
                    "hide_zero_subtotal_lines": False,
                    "include_discounts_on_lines": False,
                },
                "avatax_details": {
                    "id": None,
                    "status": None,
                    "document_code": None,
                    "commit_date": None,
                    "modify_date": None,
                },
                "public_url": f"https://www.chargifypay.com/invoice/{uid}?token={rng.getrandbits(96):024x}",
                "previous_balance_data": {"captured_at": created, "invoices": []},
                "public_url_expires_on": (
                    date.fromordinal(t.cols["issue_date"][row]) + timedelta(days=365)
                ).isoformat(),
                "branding_theme_id": None,
            }
        )
        return record

    def _breakdowns(
        self,
        record: Record,
        *,
        row: int,
        rng: random.Random,
        flags: frozenset[str],
        product_row: int,
        paid: int,
    ) -> None:
        """The arrays Maxio leaves out unless asked for, one flag each."""
        t = self.table
        products = self.ds.factory("products", Products)
        subtotal, discount, tax = (
            t.cols[c][row] for c in ("subtotal_amount", "discount_amount", "tax_amount")
        )
        credit = t.cols["credit_amount"][row]
        transaction = 160_000_000 + t.cols["number"][row] * 10
        created = self.ds.clock.iso(t.cols["created_at"][row])
        start = t.cols["issue_date"][row]
        line_uid = encode_uid("li_", rng.randrange(UID_SPACE))
        period_start = date.fromordinal(start).isoformat()
        period_end = date.fromordinal(start + 30).isoformat()
        if "line_items" in flags:
            record["line_items"] = [
                baseline_line_item(
                    products, product_row, uid=line_uid, amounts=(subtotal, discount, tax),
                    period=(period_start, period_end), transaction_id=transaction,
                )
            ]  # fmt: skip
        if "discounts" in flags:
            record["discounts"] = (
                [
                    {
                        "uid": encode_uid("dli_", rng.randrange(UID_SPACE)),
                        "title": "Coupon: 10% off",
                        "description": None,
                        "code": COUPON_CODES[0],
                        "source_type": "Coupon",
                        "source_id": 120_000,
                        "discount_type": "percentage",
                        "percentage": "10.0",
                        "eligible_amount": money(subtotal),
                        "discount_amount": money(discount),
                        "transaction_id": transaction + 1,
                        "line_item_breakouts": [
                            {
                                "uid": line_uid,
                                "eligible_amount": money(subtotal),
                                "discount_amount": money(discount),
                            }
                        ],
                    }
                ]
                if discount
                else []
            )
        if "taxes" in flags:
            record["taxes"] = (
                [
                    {
                        "uid": encode_uid("tli_", rng.randrange(UID_SPACE)),
                        "title": "Sales Tax",
                        "description": None,
                        "source_type": "Tax",
                        "source_id": 7_000,
                        "percentage": "8.25",
                        "taxable_amount": money(subtotal - discount),
                        "tax_amount": money(tax),
                        "transaction_id": transaction + 2,
                        "line_item_breakouts": [
                            {
                                "uid": line_uid,
                                "taxable_amount": money(subtotal - discount),
                                "tax_amount": money(tax),
                                "tax_exempt_amount": "0.00",
                            }
                        ],
                        "tax_component_breakouts": [],
                        "eu_vat": False,
                        "type": "Tax",
                        "tax_exempt_amount": "0.00",
                    }
                ]
                if tax
                else []
            )
        if "credits" in flags:
            record["credits"] = (
                [
                    {
                        "uid": encode_uid("cdt_", rng.randrange(UID_SPACE)),
                        "credit_note_number": str(t.cols["number"][row]),
                        "credit_note_uid": encode_uid("cn_", rng.randrange(UID_SPACE)),
                        "transaction_time": created,
                        "memo": "Goodwill credit",
                        "original_amount": money(credit),
                        "applied_amount": money(credit),
                    }
                ]
                if credit
                else []
            )
        # Newer than the list's flags: real rows carry it without being asked.
        record["debits"] = []
        if "payments" in flags:
            record["payments"] = (
                [
                    {
                        "transaction_time": self.ts(row, "updated_at"),
                        "memo": "Automatic payment",
                        "original_amount": money(paid),
                        "applied_amount": money(paid),
                        "payment_method": {
                            "details": "",
                            "kind": "credit_card",
                            "memo": "",
                            "type": "credit_card",
                            "card_brand": "visa",
                            "card_expiration": "12/2030",
                            "last_four": None,
                            "masked_card_number": "XXXX-XXXX-XXXX-1111",
                        },
                        "transaction_id": transaction + 3,
                        "prepayment": False,
                        "gateway_handle": None,
                        "gateway_used": "bogus",
                        "gateway_transaction_id": f"{transaction + 3}",
                        "received_on": None,
                        "uid": encode_uid("pmt_", rng.randrange(UID_SPACE)),
                    }
                ]
                if paid
                else []
            )
        if "refunds" in flags:
            record["refunds"] = []
        if "custom_fields" in flags:
            record["custom_fields"] = [
                {
                    "owner_id": t.cols["customer_id"][row],
                    "owner_type": "Customer",
                    "name": "Region",
                    "value": rng.choice(("EMEA", "AMER", "APAC")),
                    "metadatum_id": 900_000 + row,
                }
            ]


class PaymentProfiles(Factory):
    """Stored cards and bank accounts of customers (the list shows active ones only)."""

    columns = ("customer_id", "created_at", "updated_at", "bank")
    first_pk = 10_088_000
    churns = True

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """A card (or, one time in eight, a bank account) of an older customer."""
        customers = self.ds.table("customers")
        return {
            **super().make(rng, pk, created, horizon),
            "customer_id": customers.pk[self.ds.pick("customers", created, rng)],
            "bank": int(rng.random() < 0.125),
        }

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Update the billing ZIP code."""
        self.set_extra(row, billing_zip=f"{rng.randrange(100000):05d}")
        return {}

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A PaymentProfile per the spec."""
        customers = self.ds.factory("customers", Customers)
        customer_id = self.table.cols["customer_id"][row]
        record = payment_profile(
            "bank_account" if self.table.cols["bank"][row] else "credit_card",
            self.rng(row),
            profile_id=self.table.pk[row],
            customer_id=customer_id,
            p=customers.profile(customers.table.row_of(customer_id)),
            iso=self.ds.clock.iso(self.table.cols["created_at"][row]),
        )
        record["updated_at"] = self.ts(row, "updated_at")
        return record


CREDIT_NOTE_FLAGS = ("line_items", "discounts", "taxes", "refunds", "applications")


class CreditNotes(Factory):
    """Credit notes against invoices: keyed by uid (cn_...), applied or still open."""

    columns = (
        "number", "subscription_id", "customer_id", "created_at", "updated_at",
        "issue_date", "applied_date", "total_amount",
    )  # fmt: skip
    key_field = "uid"
    pk_ascending = False
    churns = True

    def next_pk(self, rng: random.Random) -> int:
        """The uid number of the next credit note."""
        return scramble(len(self.table) + 1_000_003)

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """A credit for part of an older subscription's price, usually applied at once."""
        subs = self.ds.table("subscriptions")
        sub = self.ds.pick("subscriptions", created, rng)
        roll = rng.random()
        applied = created if roll < 0.7 else later(rng, created, horizon) if roll < 0.9 else None
        issue = self.ds.clock.local_date(created).toordinal()
        return {
            "pk": pk,
            "number": len(self.table) + 1,
            "subscription_id": subs.pk[sub],
            "customer_id": subs.cols["customer_id"][sub],
            "created_at": created,
            "updated_at": created if applied is None else applied,
            "issue_date": issue,
            "applied_date": None
            if applied is None
            else self.ds.clock.local_date(applied).toordinal(),
            "total_amount": rng.choice((500, 1000, 2050, 4900)),
        }

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Apply an open credit note, or edit an applied one's memo."""
        if self.get(row, "applied_date") is None:
            return {"applied_date": self.ds.clock.local_date(now).toordinal()}
        self.set_extra(row, memo=f"Updated {self.ds.clock.iso(now)}")
        return {}

    def key(self, row: int) -> str:
        """The uid, e.g. cn_8m9vbd5kkv7kr."""
        return encode_uid("cn_", self.table.pk[row])

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A CreditNote per the spec; sub-arrays only when flagged."""
        t = self.table
        rng = self.rng(row)
        customers = self.ds.factory("customers", Customers)
        customer_id = t.cols["customer_id"][row]
        p = customers.profile(customers.table.row_of(customer_id, deleted=True))
        total = t.cols["total_amount"][row]
        applied = self.get(row, "applied_date") is not None
        address = {
            "street": p["address"] or None,
            "line2": None,
            "city": p["city"] or None,
            "state": p["state"] or None,
            "zip": p["zip"] or None,
            "country": p["country"] or None,
        }
        issue = self.day(row, "issue_date")
        record: Record = {
            "uid": self.key(row),
            "site_id": SITE_ID,
            "customer_id": customer_id,
            "subscription_id": t.cols["subscription_id"][row],
            "number": str(t.cols["number"][row]),
            "sequence_number": t.cols["number"][row],
            "issue_date": issue,
            "applied_date": self.day(row, "applied_date"),
            "status": "applied" if applied else "open",
            "currency": "USD",
            "memo": rng.choice(("Refund for overpayment", "Service credit", "Goodwill")),
            "seller": {
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
            },
            "customer": {
                "chargify_id": customer_id,
                "first_name": p["first_name"],
                "last_name": p["last_name"],
                "organization": p["organization"] or None,
                "email": p["email"],
                "vat_number": None,
                "reference": p["reference"],
            },
            "billing_address": address,
            "shipping_address": dict(address),
            "subtotal_amount": money(total),
            "discount_amount": money(0),
            "tax_amount": money(0),
            "total_amount": money(total),
            "applied_amount": money(total if applied else 0),
            "remaining_amount": money(0 if applied else total),
        }
        line_uid = encode_uid("cnli_", rng.randrange(UID_SPACE))
        if "line_items" in flags:
            record["line_items"] = [
                {
                    "uid": line_uid,
                    "title": "Service credit",
                    "description": "Credit",
                    "quantity": "1.0",
                    "unit_price": money(total),
                    "subtotal_amount": money(total),
                    "discount_amount": money(0),
                    "tax_amount": money(0),
                    "tax_included": False,
                    "total_amount": money(total),
                    "tiered_unit_price": False,
                    "period_range_start": issue,
                    "period_range_end": issue,
                    "product_id": self.ds.table("products").pk[0],
                    "product_version": 1,
                    "component_id": None,
                    "price_point_id": None,
                    "billing_schedule_item_id": None,
                    "custom_item": False,
                    "prepaid_allocation_expires_at": None,
                }
            ]
        for name in ("discounts", "taxes", "refunds"):
            if name in flags:
                record[name] = []
        if "applications" in flags:
            record["applications"] = (
                [
                    {
                        "uid": encode_uid("cdt_", rng.randrange(UID_SPACE)),
                        "transaction_time": self.ts(row, "updated_at"),
                        "invoice_uid": encode_uid("inv_", scramble(1 + rng.randrange(10**6))),
                        "memo": "Applied to invoice",
                        "applied_amount": money(total),
                    }
                ]
                if applied
                else []
            )
        return record


EVENT_KEYS = (
    "signup_success", "payment_success", "renewal_success", "subscription_state_change",
    "billing_date_change", "customer_update", "invoice_issued",
    "subscription_deletion", "customer_delete",
)  # fmt: skip
"""Keys of the events the site makes, stored by index; deletions are only ever logged."""
_EVENT_WEIGHTS = (10, 35, 30, 10, 5, 5, 5)
_DELETIONS = frozenset(EVENT_KEYS[len(_EVENT_WEIGHTS) :])
_STATE_CHANGES = (("active", "past_due"), ("past_due", "active"), ("trialing", "active"))


class Events(Factory):
    """Site activity: immutable, so changes to the site only add new events."""

    columns = ("subscription_id", "customer_id", "product_id", "created_at", "kind")
    first_pk = 343_000_000
    churns = True

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """An event about an older subscription."""
        subs = self.ds.table("subscriptions")
        sub = self.ds.pick("subscriptions", created, rng)
        return {
            "pk": pk,
            "subscription_id": subs.pk[sub],
            "customer_id": subs.cols["customer_id"][sub],
            "product_id": subs.cols["product_id"][sub],
            "created_at": created,
            "kind": rng.choices(range(len(_EVENT_WEIGHTS)), _EVENT_WEIGHTS)[0],
        }

    def log_deletion(
        self, key: str, rng: random.Random, now: int, customer_id: int, subscription_id: int | None
    ) -> int:
        """Append a subscription_deletion or customer_delete event; returns its row."""
        return self.table.append(
            {
                "pk": self.next_pk(rng),
                "subscription_id": subscription_id,
                "customer_id": customer_id,
                "created_at": now,
                "kind": EVENT_KEYS.index(key),
            }
        )

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """An Event per the spec, with event_specific_data for its key."""
        t = self.table
        rng = self.rng(row)
        key = EVENT_KEYS[t.cols["kind"][row]]
        sub_id = self.get(row, "subscription_id")
        data: Record | None = None  # deletions have none, per the spec
        message = f"{key.replace('_', ' ').capitalize()} for subscription {sub_id}"
        if key in _DELETIONS:
            message = (
                f"Subscription {sub_id} deleted"
                if sub_id is not None
                else f"Customer {t.cols['customer_id'][row]} deleted"
            )
        elif key in ("payment_success", "renewal_success"):
            data = {
                "product_id": t.cols["product_id"][row],
                "account_transaction_id": t.pk[row] + 7,
            }
        elif key == "subscription_state_change":
            old, new = rng.choice(_STATE_CHANGES)
            data = {"previous_subscription_state": old, "new_subscription_state": new}
            message = f"State changed on subscription {sub_id} from {old} to {new}"
        return {
            "id": t.pk[row],
            "key": key,
            "message": message,
            "subscription_id": sub_id,
            "customer_id": t.cols["customer_id"][row],
            "created_at": self.ts(row, "created_at"),
            "event_specific_data": data,
        }


def baseline_line_item(
    products: Products,
    product_row: int,
    *,
    uid: str,
    amounts: tuple[int, int, int],
    period: tuple[str, str],
    transaction_id: int | None,
) -> Record:
    """The one product line of an invoice or proforma invoice (cents in, money out)."""
    subtotal, discount, tax = amounts
    return {
        "uid": uid,
        "title": products.name_of(product_row),
        "description": f"{period[0]} - {period[1]}",
        "quantity": "1.0",
        "unit_price": money(subtotal),
        "subtotal_amount": money(subtotal),
        "discount_amount": money(discount),
        "tax_amount": money(tax),
        "tax_included": False,
        "total_amount": money(subtotal - discount + tax),
        "tiered_unit_price": False,
        "period_range_start": period[0],
        "period_range_end": period[1],
        "transaction_id": transaction_id,
        "product_id": products.table.pk[product_row],
        "product_version": 1,
        "component_id": None,
        "price_point_id": None,
        "billing_schedule_item_id": None,
        "hide": False,
        "component_cost_data": None,
        "product_price_point_id": products.price_point(product_row),
        "custom_item": False,
        "kind": "baseline",
        "prepaid_allocation_expires_at": None,
    }
