"""Scheduled renewals of subscriptions, and prepayments of subscription groups (2026 spec)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .accounts import PAYMENT_TYPE_COUNT, prepayment
from .catalog import Products
from .data import DAY, SITE_ID, ChildFactory, Record, Row, add_months, enum_rank, later
from .pools import UID_ALPHABET, encode_uid

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping

    from .table import Scope

RENEWAL_STATUSES = enum_rank(("draft", "scheduled", "pending", "canceled", "active", "fulfilled"))
_STATUS_NAMES = {rank: name for name, rank in RENEWAL_STATUSES.items()}


class ScheduledRenewals(ChildFactory):
    """A subscription's next term, configured ahead: its items and its contract.

    The records show no updated_at; a hidden one lets `mutate()` change a status.
    """

    columns = ("subscription_id", "created_at", "updated_at", "starts_at", "status", "items")
    parent = "subscriptions"
    parent_column = "subscription_id"
    path_param = "subscription_id"
    per_parent = 2
    first_pk = 120

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row:
        """A renewal starting a month or three after it is configured."""
        status = rng.choice(("draft", "scheduled", "scheduled", "pending", "canceled", "fulfilled"))
        return {
            "pk": pk,
            "subscription_id": self.ds.table("subscriptions").pk[parent_row],
            "created_at": created,
            "updated_at": later(rng, created, horizon),
            "starts_at": created + rng.choice((30, 60, 90)) * DAY,
            "status": RENEWAL_STATUSES[status],
            "items": rng.choice((1, 1, 2)),
        }

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """Move the renewal along: scheduled, then active or canceled."""
        status = _STATUS_NAMES[self.table.cols["status"][row]]
        after = {"draft": "scheduled", "scheduled": "active", "pending": "active"}
        return {"status": RENEWAL_STATUSES[after.get(status, "canceled")]}

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A ScheduledRenewalConfiguration per the spec."""
        t = self.table
        pk, subscription_id = t.pk[row], t.cols["subscription_id"][row]
        starts = t.cols["starts_at"][row]
        return {
            "id": pk,
            "site_id": SITE_ID,
            "subscription_id": subscription_id,
            "starts_at": self.ds.clock.iso(starts),
            "ends_at": self.ds.clock.iso(add_months(starts, 12)),
            "lock_in_at": self.ds.clock.iso(starts - 14 * DAY),
            "created_at": self.ts(row, "created_at"),
            "status": _STATUS_NAMES[t.cols["status"][row]],
            "scheduled_renewal_configuration_items": self._items(row),
            "contract": {
                "id": 100 + pk,
                "maxio_id": encode_uid("ctr_", pk),
                "number": None if pk % 2 else f"C-{pk:05d}",
                "register": {
                    "id": 12,
                    "maxio_id": encode_uid("reg_", 12),
                    "name": "Register",
                    "currency_code": "USD",
                },
            },
        }

    def _items(self, row: int) -> list[Record]:
        """The subscription's product for the next term, and maybe a second one."""
        t = self.table
        subscriptions = self.ds.table("subscriptions")
        products = self.ds.factory("products", Products)
        subscription = subscriptions.row_of(t.cols["subscription_id"][row])
        product = products.table.row_of(subscriptions.cols["product_id"][subscription])
        rng = self.rng(row)
        items = []
        for i in range(t.cols["items"][row]):
            if i:
                product = rng.randrange(len(products.table))
            quantity = rng.choice((1, 1, 5))
            items.append({
                "id": t.pk[row] * 10 + i,
                "subscription_id": t.cols["subscription_id"][row],
                "subscription_renewal_configuration_id": t.pk[row],
                "item_id": products.table.pk[product],
                "item_type": "Product",
                "item_subclass": "Product",
                "price_point_id": products.price_point(product),
                "price_point_type": "ProductPricePoint",
                "quantity": quantity,
                "decimal_quantity": f"{quantity}.0",
                "created_at": self.ts(row, "created_at"),
            })  # fmt: skip
        return items


class GroupPrepayments(ChildFactory):
    """Money paid ahead to a subscription group's invoice account.

    Listed per group uid (`/subscription_groups/{uid}/prepayments.json`); a hidden
    updated_at lets `mutate()` draw a prepayment down.
    """

    columns = ("group_id", "created_at", "updated_at", "amount", "remaining", "method")
    parent = "subscription_groups"
    parent_column = "group_id"
    path_param = "uid"
    first_pk = 9_000

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row:
        """An amount, partly used up by now."""
        amount = rng.choice((5000, 10000, 50000))
        return {
            "pk": pk,
            "group_id": self.ds.table("subscription_groups").pk[parent_row],
            "created_at": created,
            "updated_at": created,
            "amount": amount,
            "remaining": rng.choice((amount, amount, amount // 2, 0)),
            "method": rng.randrange(PAYMENT_TYPE_COUNT),
        }

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """An invoice draws on what remains."""
        return {"remaining": self.table.cols["remaining"][row] // 2}

    @staticmethod
    def uid(group_id: int) -> str:
        """The uid of a group, by its key (see accounts.SubscriptionGroups.key)."""
        return encode_uid("grp_", group_id)

    def path_params(self, row: int) -> dict[str, int | str]:
        """The group's uid, as the path names it."""
        return {"uid": self.uid(self.parent_key(row))}

    def scope(self, params: Mapping[str, int | str]) -> Scope:
        """The prepayments of the group the path's uid names (KeyError: no such group)."""
        prefix, _, digits = str(params["uid"]).partition("_")
        if prefix != "grp" or not digits or any(c not in UID_ALPHABET for c in digits):
            raise KeyError(params["uid"])
        group_id = 0
        for c in digits:
            group_id = group_id * len(UID_ALPHABET) + UID_ALPHABET.index(c)
        self.ds.table(self.parent).row_of(group_id)  # KeyError for an unknown group
        return self.parent_column, group_id

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """A ListSubscriptionGroupPrepaymentItem per the spec."""
        return {
            **prepayment(self, row),
            "subscription_group_uid": self.uid(self.table.cols["group_id"][row]),
            "memo": "Group prepayment",
        }
