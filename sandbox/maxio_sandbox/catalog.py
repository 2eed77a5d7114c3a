"""The catalog: product families and products, and what is sold with them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .data import (
    SITE_ID,
    ChildFactory,
    Dataset,
    Factory,
    Record,
    Row,
)
from .pools import (
    COUPON_CODES,
    FAMILY_NAMES,
    PRODUCT_NAMES,
    nth_name,
    slug,
)

if TYPE_CHECKING:
    import random


class ProductFamilies(Factory):
    """Product families: a small catalog, listed unpaged."""

    first_pk = 527_890
    catalog = True

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A ProductFamily per the spec."""
        name = nth_name(FAMILY_NAMES, row)
        return {
            "id": self.table.pk[row],
            "name": name,
            "handle": slug(name),
            "accounting_code": None,
            "description": f"{name} offered by the site",
            "surcharging": False,
            "created_at": self.ts(row, "created_at"),
            "updated_at": self.ts(row, "updated_at"),
            "archived_at": None,
        }


class Products(Factory):
    """Products, each in a family; subscriptions and invoices embed them."""

    columns = (
        "family_id", "created_at", "updated_at", "price_in_cents", "interval", "trial_days",
        "archived_at",
    )  # fmt: skip
    first_pk = 6_300_000
    catalog = True

    def __init__(self, ds: Dataset, name: str) -> None:
        """A catalog with a cache of embedded renderings."""
        super().__init__(ds, name)
        self._nested: dict[int, tuple[tuple[int, int], Record]] = {}

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """A price, a billing interval in months and maybe a trial."""
        family = self.ds.pick("product_families", created, rng)
        return {
            **super().make(rng, pk, created, horizon),
            "family_id": self.ds.table("product_families").pk[family],
            "price_in_cents": rng.choice((1000, 2500, 4900, 9900, 19900, 49900)),
            "interval": rng.choice((1, 1, 1, 12)),
            "trial_days": rng.choice((None, None, 14, 30)),
        }

    def name_of(self, row: int) -> str:
        """The product's name."""
        return nth_name(PRODUCT_NAMES, row)

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A Product per the spec, with its product_family."""
        pk = self.table.pk[row]
        name = self.name_of(row)
        trial = self.get(row, "trial_days")
        families = self.ds.factories["product_families"]
        return {
            "id": pk,
            "name": name,
            "handle": slug(name),
            "description": f"The {name} plan",
            "accounting_code": f"ACCT-{pk % 1000:03d}",
            "request_credit_card": True,
            "expiration_interval": None,
            "expiration_interval_unit": "never",
            "created_at": self.ts(row, "created_at"),
            "updated_at": self.ts(row, "updated_at"),
            "price_in_cents": self.get(row, "price_in_cents"),
            "interval": self.get(row, "interval"),
            "interval_unit": "month",
            "initial_charge_in_cents": None,
            "trial_price_in_cents": 0 if trial else None,
            "trial_interval": trial,
            "trial_interval_unit": "day" if trial else None,
            "archived_at": self.ts(row, "archived_at"),
            "require_credit_card": True,
            "return_params": "",
            "taxable": row % 2 == 0,
            "update_return_url": "",
            "initial_charge_after_trial": False,
            "version_number": 1,
            "update_return_params": "",
            "product_family": families.render(
                families.table.row_of(self.get(row, "family_id") or 0)
            ),
            "public_signup_pages": [
                {
                    "id": pk + 300_000,
                    "return_url": None,
                    "return_params": None,
                    "url": f"https://{self.ds.cfg.subdomain}.chargifypay.com/subscribe/{slug(name)}",
                }
            ],
            "product_price_point_name": "Original",
            "request_billing_address": False,
            "require_billing_address": False,
            "require_shipping_address": False,
            "tax_code": None,
            "default_product_price_point_id": self.price_point(row),
            "use_site_exchange_rate": True,
            "item_category": None,
            "product_price_point_id": self.price_point(row),
            "product_price_point_handle": "original",
            "unspsc_code": None,
        }

    def nested(self, row: int) -> Record:
        """The product as embedded in subscriptions.

        One dict per catalog version, shared: thousands of subscriptions embed the same
        few products.
        """
        version = (self.table.version, self.ds.table("product_families").version)
        hit = self._nested.get(row)
        if hit is None or hit[0] != version:
            hit = self._nested[row] = (version, self.render(row))
        return hit[1]

    def price_point(self, row: int) -> int:
        """The id of the product's default price point."""
        return self.table.pk[row] + 1_000_000


class Coupons(Factory):
    """Coupons of a product family: percentages or amounts off."""

    columns = ("family_id", "created_at", "updated_at", "percent", "archived_at")
    first_pk = 120_000
    catalog = True

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """A coupon for an older product family."""
        families = self.ds.table("product_families")
        percent = rng.random() < 0.6
        if len(self.table) == 1:
            percent = False  # so that even a small site has an amount-off coupon
        return {
            **super().make(rng, pk, created, horizon),
            "family_id": families.pk[self.ds.pick("product_families", created, rng)],
            "percent": int(percent),
        }

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A Coupon per the spec."""
        t = self.table
        families = self.ds.factories["product_families"]
        family_row = families.table.row_of(t.cols["family_id"][row])
        code = nth_name(COUPON_CODES, row).replace(" ", "_")
        percent = bool(t.cols["percent"][row])
        created = self.ts(row, "created_at")
        return {
            "id": t.pk[row],
            "name": code.replace("_", " ").title(),
            "code": code,
            "description": "Seeded coupon",
            "amount": None if percent else 5.0,
            "amount_in_cents": None if percent else 500,
            "product_family_id": t.cols["family_id"][row],
            "product_family_name": nth_name(FAMILY_NAMES, family_row),
            "start_date": created,
            "end_date": None,
            "percentage": "10.0" if percent else None,
            "recurring": percent,
            "recurring_scheme": "recur_indefinitely" if percent else "do_not_recur",
            "duration_period_count": None,
            "duration_interval": None,
            "duration_interval_unit": None,
            "duration_interval_span": None,
            "allow_negative_balance": False,
            "archived_at": self.ts(row, "archived_at"),
            "conversion_limit": None,
            "stackable": True,
            "compounding_strategy": "compound",
            "use_site_exchange_rate": True,
            "created_at": created,
            "updated_at": self.ts(row, "updated_at"),
            "discount_type": "percent" if percent else "amount",
            "exclude_mid_period_allocations": False,
            "apply_on_cancel_at_end_of_period": False,
            "apply_on_subscription_expiration": False,
            "coupon_restrictions": [],
        }


_SUBCODE_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_SUBCODE_SPACE = len(_SUBCODE_ALPHABET) ** 6


def subcode(number: int) -> str:
    """A six-character code such as 3JU6PR, unique per number below 36**6."""
    # 1_000_003 is prime and divides neither 2 nor 3: a bijection on [0, 36**6).
    number = (number * 1_000_003 + 12_345) % _SUBCODE_SPACE
    chars = []
    for _ in range(6):
        number, digit = divmod(number, len(_SUBCODE_ALPHABET))
        chars.append(_SUBCODE_ALPHABET[digit])
    return "".join(chars)


class CouponSubcodes(ChildFactory):
    """A coupon's subcodes, listed per coupon as bare strings.

    Rendered as {"coupon_id", "code"} (what a tap makes of each string); the list
    serves only the code.
    """

    columns = ("coupon_id", "created_at")
    parent = "coupons"
    parent_column = "coupon_id"
    path_param = "coupon_id"
    key_field = "code"
    first_pk = 1

    def eligible(self, parent_row: int) -> bool:
        """Every other coupon has subcodes: the others list none."""
        return parent_row % 2 == 0

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row:
        """A code of a coupon."""
        coupon_id = self.ds.table("coupons").pk[parent_row]
        return {"pk": pk, "coupon_id": coupon_id, "created_at": created}

    def key(self, row: int) -> str:
        """The code itself: subcodes are unique across the site, like coupon codes."""
        return subcode(self.table.pk[row])

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """The code and its coupon."""
        return {"coupon_id": self.table.cols["coupon_id"][row], "code": self.key(row)}


class Offers(Factory):
    """Offers: a product with preset components and discounts."""

    columns = ("product_id", "created_at", "updated_at", "archived_at")
    first_pk = 239
    catalog = True

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """An offer of an older product."""
        products = self.ds.table("products")
        return {
            **super().make(rng, pk, created, horizon),
            "product_id": products.pk[self.ds.pick("products", created, rng)],
        }

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """An Offer per the spec."""
        t = self.table
        products = self.ds.factory("products", Products)
        product_row = products.table.row_of(t.cols["product_id"][row])
        family_id = products.table.cols["family_id"][product_row]
        family_row = self.ds.table("product_families").row_of(family_id)
        name = f"{nth_name(('First', 'Second', 'Third', 'Fourth'), row)} Offer"
        return {
            "id": t.pk[row],
            "site_id": SITE_ID,
            "product_family_id": family_id,
            "product_id": t.cols["product_id"][row],
            "product_price_point_id": products.price_point(product_row),
            "product_revisable_number": 0,
            "name": name,
            "handle": slug(name),
            "description": "",
            "created_at": self.ts(row, "created_at"),
            "updated_at": self.ts(row, "updated_at"),
            "archived_at": self.ts(row, "archived_at"),
            "offer_items": [],
            "offer_discounts": [],
            "product_family_name": nth_name(FAMILY_NAMES, family_row),
            "product_name": products.name_of(product_row),
            "product_price_point_name": "Original",
            "product_price_in_cents": products.table.cols["price_in_cents"][product_row],
            "offer_signup_pages": [],
        }


_REASONS = (
    ("LARGE", "This is too complicated"),
    ("CH1", "This does not meet my needs"),
    ("HAN99", "Hard to setup"),
    ("PRICE", "Too expensive"),
)


class ReasonCodes(Factory):
    """Churn reason codes a site offers on cancellation."""

    first_pk = 1
    catalog = True

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A ReasonCode per the spec."""
        code, description = _REASONS[row % len(_REASONS)]
        return {
            "id": self.table.pk[row],
            "site_id": SITE_ID,
            "code": code if row < len(_REASONS) else f"{code}{row}",
            "description": description,
            "position": row + 1,
            "created_at": self.ts(row, "created_at"),
            "updated_at": self.ts(row, "updated_at"),
        }
