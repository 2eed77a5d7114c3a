"""Deletes, archives and invoice status changes.

Lists show these by leaving records out (unless asked) or by logging an event, per
API-NOTES "Deletes".
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from .accounts import Metadata
from .billing import STATUS_CHANGES, Events, Invoices
from .data import ChildFactory
from .invoicing import InvoiceEvents

if TYPE_CHECKING:
    from .data import Dataset, Factory

Key = int | str | tuple[int | str, ...]

HARD_DELETES = ("customers", "subscriptions", "payment_profiles")
"""What Maxio deletes for good. Metadata is soft-deleted; catalog items are archived."""


def delete(ds: Dataset, name: str, row: int, now: int) -> dict[str, set[Key]]:
    """Delete a record and what belongs to it; returns the keys deleted per collection."""
    f = ds.factories[name]
    if isinstance(f, Metadata):
        f.soft_delete(row, now)
        return {name: {f.key(row)}}
    if name not in HARD_DELETES:
        raise ValueError(f"Maxio has no delete of {name}")
    out: dict[str, set[Key]] = defaultdict(set)
    _delete(ds, f, row, now, out)
    return dict(out)


def _delete(ds: Dataset, f: Factory, row: int, now: int, out: dict[str, set[Key]]) -> None:
    pk = f.table.pk[row]
    for dependant, column in _dependants(ds, f.name):
        for r in dependant.children_of(column, pk):
            _delete(ds, dependant, r, now, out)
    f.table.delete(row)
    out[f.name].add(f.key(row))
    events = ds.factory("events", Events)
    rng = ds.mutation_rng
    if f.name == "subscriptions":
        customer = f.table.cols["customer_id"][row]
        events.log_deletion("subscription_deletion", rng, now, customer, pk)
    elif f.name == "customers":
        events.log_deletion("customer_delete", rng, now, pk, None)


def _dependants(ds: Dataset, name: str) -> list[tuple[Factory, str]]:
    """The collections whose records go with a record of `name`, and the column naming it."""
    children: list[tuple[Factory, str]] = [
        (f, f.parent_column)
        for f in ds.factories.values()
        if isinstance(f, ChildFactory) and f.parent == name
    ]
    if name == "customers":
        # Its subscriptions first (each logs its own deletion, in id order), and its
        # cards and bank accounts: none renders without its customer.
        owned = [ds.factories["subscriptions"], ds.factories["payment_profiles"]]
        children = [(f, "customer_id") for f in owned] + children
    return children


def archive(ds: Dataset, name: str, row: int, now: int) -> None:
    """Set a catalog item's archived_at (and updated_at) to now."""
    f = ds.factories[name]
    if "archived_at" not in f.table.cols:
        raise ValueError(f"{name} cannot be archived here")
    if f.get(row, "archived_at") is not None:
        raise ValueError(f"{name} {f.key(row)!r} is archived already")
    f.table.update(row, {"archived_at": now, "updated_at": now})


def change_invoice_status(ds: Dataset, row: int | None, now: int) -> int:
    """Move an invoice (or a random one that can move) to its next status; the event's id."""
    invoices = ds.factory("invoices", Invoices)
    if row is None:
        movable = [r for r in invoices.table.live_rows() if invoices.status(r) in STATUS_CHANGES]
        if not movable:
            raise LookupError("no invoice has a status to change")
        row = ds.mutation_rng.choice(movable)
    change = invoices.change_status(row, now)
    return ds.factory("invoice_events", InvoiceEvents).log_status_change(row, change, now)
