"""Seeded records: the `Factory` base and the `Dataset` holding one site's collections.

Only what lists filter or sort on, and what must stay consistent across records
(references, states, amounts), is stored, in the columns of a `Table`. Everything else is
derived when a record is rendered, from a random generator seeded by the record's key, so
a record always renders the same and half a million of them fit in little memory.
The factories themselves live in the modules named after what they hold (catalog.py,
pricing.py, billing.py, invoicing.py, usage.py, accounts.py, legacy.py).
"""

# ruff: noqa: S311 -- seeded, reproducible randomness is the point; nothing here is secret

from __future__ import annotations

import random
import time
import zlib
from bisect import bisect_right
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from .clock import SiteClock
from .table import Table

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .config import SandboxConfig
    from .table import Scope

F = TypeVar("F", bound="Factory")
Record = dict[str, Any]
Row = dict[str, int | None]
DAY = 86_400
SITE_ID = 51288


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_MEAN_MONTH = 2_629_746  # seconds in the mean Gregorian month


def add_months(ts: int, months: int) -> int:
    """The same day and time `months` later, clamped to the month's last day (UTC)."""
    d = datetime.fromtimestamp(ts, timezone.utc)
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    leap = month == 2 and year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    day = min(d.day, _MONTH_DAYS[month - 1] + leap)
    return int(
        datetime(year, month, day, d.hour, d.minute, d.second, tzinfo=timezone.utc).timestamp()
    )


def current_period(anchor: int, months: int, at: int) -> tuple[int, int, int]:
    """(number of whole periods, start, end) of the billing period holding `at`."""
    k = max(0, (at - anchor) // (months * _MEAN_MONTH))
    start = add_months(anchor, k * months)
    while k and start > at:
        k -= 1
        start = add_months(anchor, k * months)
    end = add_months(anchor, (k + 1) * months)
    while end <= at:
        k, start = k + 1, end
        end = add_months(anchor, (k + 1) * months)
    return k, start, end


def enum_rank(values: Sequence[str]) -> dict[str, int]:
    """Store enums as their alphabetical rank, so sorting the column sorts by name."""
    return {v: i for i, v in enumerate(sorted(values))}


#: One record in this many goes without the fields its factory's `sometimes_missing` names.
MISSING_EVERY = 7


#: Rendered records a collection keeps at most.
RENDERED_MAX = 50_000


class Factory:
    """Generates, renders and changes the records of one collection."""

    columns: ClassVar[tuple[str, ...]] = ("created_at", "updated_at")
    key_field: ClassVar[str | tuple[str, ...]] = "id"
    """The field (or fields) that key a served record."""
    sometimes_missing: ClassVar[tuple[str, ...]] = ()
    """Fields left out of one record in MISSING_EVERY, as in Maxio's own examples."""
    first_pk: ClassVar[int] = 1000
    pk_ascending: ClassVar[bool] = True
    churns: ClassVar[bool] = False
    """Changes when the site is mutated without naming a collection."""
    catalog: ClassVar[bool] = False
    """Created during the first weeks of the history only (products and the like)."""

    def __init__(self, ds: Dataset, name: str) -> None:
        """An empty table; seed() fills it."""
        self.ds = ds
        self.name = name
        self.table = Table(self.columns, pk_ascending=self.pk_ascending)
        self._salt = zlib.crc32(name.encode())
        # Records as last rendered, while no table changes: rendering a page of
        # them again would cost the fake server more CPU than the tap it serves.
        self._rendered: dict[tuple[int, frozenset[str]], Record] = {}
        self._rendered_at = -1

    # --- seeding and creating ---------------------------------------------------------

    def seed(self, count: int, rng: random.Random) -> None:
        """Append `count` records created across the history, oldest first."""
        start, end = self.ds.start, self.ds.end
        if self.catalog:
            end = min(end, start + 30 * DAY)
        times = sorted(rng.randint(start, end) for _ in range(count))
        if times:
            times[0] = start  # so that every child record can find an older parent
        for created in times:
            self.table.append(self.make(rng, self.next_pk(rng), created, self.ds.end))

    def next_pk(self, rng: random.Random) -> int:
        """The key of the next record: ids grow with creation, with gaps."""
        last = self.table.pk[-1] if len(self.table) else self.first_pk
        return last + 1 + rng.randrange(3)

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """Column values of a record created at `created`.

        Its later changes stop at `horizon`: the end of the history while seeding, now
        when the record is created live.
        """
        return {"pk": pk, "created_at": created, "updated_at": later(rng, created, horizon)}

    def create(self, rng: random.Random, now: int) -> int | None:
        """Add a record created (and updated) now; returns its row (None: nothing to add)."""
        return self.table.append(self.make(rng, self.next_pk(rng), now, now))

    def change(self, row: int, rng: random.Random, now: int) -> None:
        """Edit a record as a user would: one field changes and updated_at becomes now."""
        values = self.alter(row, rng, now)
        if "updated_at" in self.columns:
            values["updated_at"] = now
        self.table.update(row, values)

    def alter(self, row: int, rng: random.Random, now: int) -> Row:
        """The column changes of an edit (may also set rendered overrides in `extra`)."""
        return {}

    def editable(self, row: int) -> bool:
        """Whether mutations may edit a record (a soft-deleted one stays as it is)."""
        return True

    def set_extra(self, row: int, **fields: Any) -> None:
        """Override rendered fields of a record (text that has no column)."""
        self.table.extra.setdefault(row, {}).update(fields)
        Table.changes += 1

    # --- rendering --------------------------------------------------------------------

    def render(self, row: int, flags: frozenset[str] = frozenset()) -> Record:
        """A record as the API serves it; `flags` adds optional arrays."""
        if self._rendered_at != Table.changes or len(self._rendered) > RENDERED_MAX:
            self._rendered, self._rendered_at = {}, Table.changes
        record = self._rendered.get((row, flags))
        if record is None:
            record = self._rendered[row, flags] = self._render(row, flags)
        return dict(record)

    def _render(self, row: int, flags: frozenset[str]) -> Record:
        record = self.draw(row, flags)
        extra = self.table.extra.get(row)
        if extra:
            record.update(extra)
        if self.sometimes_missing and row % MISSING_EVERY == MISSING_EVERY - 1:
            for name in self.sometimes_missing:
                del record[name]
        return record

    def draw(self, row: int, flags: frozenset[str]) -> Record:
        """The record before overrides; each collection defines its own."""
        raise NotImplementedError

    def key(self, row: int) -> int | str | tuple[int | str, ...]:
        """The record's primary key as served."""
        return self.table.pk[row]

    def scope(self, params: Mapping[str, int | str]) -> Scope:
        """The rows a parameterised path names; KeyError (a 404) when the parent is unknown."""
        raise KeyError(self.name)

    def path_params(self, row: int) -> dict[str, int | str]:
        """The path parameters of the list that holds a record."""
        return {}

    def children_of(self, column: str, value: int) -> list[int]:
        """The rows whose `column` holds `value` (one parent's children), by primary key."""
        return self.table.select(
            "pk", False, where=None, bounds=(None, None), offset=0, limit=2**62,
            scope=(column, value),
        )  # fmt: skip

    def rng(self, row: int, stream: int = 0) -> random.Random:
        """The generator a record's derived fields come from: same record, same values."""
        salt = self.ds.cfg.seed * 0x9E3779B1 + self._salt * 8 + stream
        return random.Random((salt << 48) + self.table.pk[row])

    def get(self, row: int, column: str) -> int | None:
        """A column value, None for NULL."""
        return self.table.get(row, column)

    def ts(self, row: int, column: str) -> str | None:
        """A timestamp column rendered in the site's offset."""
        v = self.table.get(row, column)
        return None if v is None else self.ds.clock.iso(v)

    def day(self, row: int, column: str) -> str | None:
        """A calendar-day column as YYYY-MM-DD."""
        v = self.table.get(row, column)
        return None if v is None else date.fromordinal(v).isoformat()


class ChildFactory(Factory):
    """Records that belong to one parent record each (a subscription's notes...).

    Seeding spreads `count` records over random parents, at most `per_parent` each, so
    that most parents have none and the count does not grow with the parents.
    """

    parent: ClassVar[str]
    """The parent collection, seeded earlier."""
    parent_column: ClassVar[str]
    """The column holding the parent's primary key."""
    path_param: ClassVar[str | None] = None
    """The path parameter naming the parent, when the list is one parent's."""
    per_parent: ClassVar[int] = 3

    def eligible(self, parent_row: int) -> bool:
        """Whether a parent can have records of this collection."""
        return True

    def make_child(
        self, rng: random.Random, pk: int, created: int, horizon: int, parent_row: int
    ) -> Row | None:
        """Column values of a record of `parent_row` (None: that parent cannot take one)."""
        raise NotImplementedError

    def seed(self, count: int, rng: random.Random) -> None:
        """Pick parents first, then append the records in creation order."""
        parents = self.ds.table(self.parent)
        n = len(parents)
        taken: dict[int, int] = {}
        picks: list[tuple[int, int]] = []
        # Rejection sampling: no list of every eligible parent, at 500k subscriptions.
        for _ in range(20 * count if n else 0):
            if len(picks) == count:
                break
            p = rng.randrange(n)
            if taken.get(p, 0) >= self.per_parent or not self.eligible(p):
                continue
            taken[p] = taken.get(p, 0) + 1
            born = parents.cols["created_at"][p]
            picks.append((rng.randint(born, max(born, self.ds.end)), p))
        picks.sort()
        for created, p in picks:
            values = self.make_child(rng, self.next_pk(rng), created, self.ds.end, p)
            if values is not None:
                self.table.append(values)

    def make(self, rng: random.Random, pk: int, created: int, horizon: int) -> Row:
        """A record of a random eligible parent (LookupError when there is none)."""
        p = self.pick_parent(rng, created)
        values = None if p is None else self.make_child(rng, pk, created, horizon, p)
        if values is None:
            raise LookupError(f"no parent can take a new record of {self.name}")
        return values

    def create(self, rng: random.Random, now: int) -> int | None:
        """Add a record of a random eligible parent, if one is found."""
        p = self.pick_parent(rng, now)
        values = None if p is None else self.make_child(rng, self.next_pk(rng), now, now, p)
        return None if values is None else self.table.append(values)

    def crowd(
        self, rng: random.Random, count: int, now: int, parent: int | None = None
    ) -> list[int]:
        """Add `count` records to one parent (or a random one), a second apart up to now."""
        for _ in range(50):
            p = self.pick_parent(rng, now - count) if parent is None else parent
            if p is None:
                break
            rows = []
            for created in range(now - count + 1, now + 1):
                values = self.make_child(rng, self.next_pk(rng), created, now, p)
                if values is None:
                    break
                rows.append(self.table.append(values))
            if rows:
                return rows
        raise LookupError(f"no parent can take records of {self.name}")

    def pick_parent(self, rng: random.Random, created: int) -> int | None:
        """A random eligible parent created by `created` (None after a few misses)."""
        table = self.ds.table(self.parent)
        n = bisect_right(table.cols["created_at"], created)
        for _ in range(50 if n else 0):
            p = rng.randrange(n)
            if self.eligible(p) and not table.is_deleted(p):
                return p
        return None

    def parent_key(self, row: int) -> int:
        """The primary key of a record's parent."""
        return self.table.cols[self.parent_column][row]

    def path_params(self, row: int) -> dict[str, int | str]:
        """The parent's key, under the name the path gives it."""
        return {} if self.path_param is None else {self.path_param: self.parent_key(row)}

    def scope(self, params: Mapping[str, int | str]) -> Scope:
        """The records of the parent the path names."""
        if self.path_param is None:
            raise KeyError(self.name)
        value = int(params[self.path_param])
        self.ds.table(self.parent).row_of(value)  # KeyError for an unknown parent
        return self.parent_column, value


def later(rng: random.Random, t: int, horizon: int) -> int:
    """A time at or after t, at most the horizon: most records are edited after creation."""
    if t >= horizon or rng.random() < 0.3:
        return t
    return rng.randint(t, min(horizon, t + rng.choice((60, 3600, 30 * DAY, 365 * DAY))))


class Dataset:
    """Every collection of one site, seeded from the config."""

    def __init__(self, cfg: SandboxConfig, factories: Sequence[tuple[str, type[Factory], int]]):
        """Seed every collection in order: later ones reference earlier ones."""
        self.cfg = cfg
        self.clock = SiteClock(cfg.site_timezone)
        start = self.clock.parse_datetime(cfg.history_start)
        end = (
            time.time() - 3600
            if cfg.history_end is None
            else self.clock.parse_datetime(cfg.history_end)
        )
        if start is None or end is None or end <= start:
            raise ValueError("history_start/history_end: need two datetimes, start first")
        self.start, self.end = int(start), int(end)
        self.mutation_rng = random.Random(f"{cfg.seed}/mutations")
        self.factories: dict[str, Factory] = {}
        rngs: dict[str, random.Random] = {}
        for name, cls, count in factories:
            factory = cls(self, name)
            self.factories[name] = factory
            rng = rngs[name] = random.Random(f"{cfg.seed}/{name}")
            factory.seed(count, rng)
        # Ties last, once every collection holds its final updated_at values.
        for name, factory in self.factories.items():
            if "updated_at" in factory.columns and not factory.catalog:
                self._tie_and_straddle(factory, rngs[name])

    def table(self, name: str) -> Table:
        """A collection's table."""
        return self.factories[name].table

    def factory(self, name: str, kind: type[F]) -> F:
        """A collection's factory, typed for calls to its own helpers."""
        factory = self.factories[name]
        if not isinstance(factory, kind):
            raise TypeError(f"{name} is a {type(factory).__name__}, not a {kind.__name__}")
        return factory

    def pick(self, name: str, created: int, rng: random.Random) -> int:
        """A random row of a collection created no later than `created`, not deleted.

        LookupError when every such row is deleted.
        """
        table = self.table(name)
        n = bisect_right(table.cols["created_at"], created)
        row = rng.randrange(n) if n else 0
        # Redraw over deleted rows: with none deleted, the draws (and the seeded data)
        # are what they were before deletes existed.
        for _ in range(50):
            if not table.is_deleted(row):
                return row
            row = rng.randrange(max(n, 1))
        live = [r for r in table.live_rows() if r < max(n, 1)]
        if not live:
            raise LookupError(f"every row of {name} is deleted")
        return rng.choice(live)

    @staticmethod
    def now() -> int:
        """The server clock: UTC now, truncated to the second."""
        return int(time.time())

    def _tie_and_straddle(self, factory: Factory, rng: random.Random) -> None:
        """Put `tied_batch` records on one updated_at second, and a few near DST changes.

        Records land on each side of the site's latest offset changes, where code that
        compares local timestamps as strings breaks.
        """
        table = factory.table
        created = table.cols["created_at"]
        taken: set[int] = set()

        def older_rows(t: int, k: int) -> list[int]:
            # Rejection sampling: no list of every candidate row, at 500k rows.
            n = bisect_right(created, t)
            k = min(k, n - sum(r < n for r in taken))
            chosen: list[int] = []
            while len(chosen) < k:
                r = rng.randrange(n)
                if r not in taken:
                    taken.add(r)
                    chosen.append(r)
            return chosen

        batch = min(self.cfg.tied_batch, len(table))
        if batch > 1:
            t = rng.randint(self.start + (self.end - self.start) * 7 // 10, self.end)
            for r in older_rows(t, batch):
                table.update(r, {"updated_at": t})
        if len(table) < batch + 24:
            return  # too few records to spare for the DST probes
        changes = self.clock.transitions(self.start, self.end)
        for t in changes[-2:]:
            for moment in (t - 3600, t - 1, t, t + 3599):
                for r in older_rows(moment, 1):
                    table.update(r, {"updated_at": moment})


# --- the site ---------------------------------------------------------------------------


def render_site(ds: Dataset) -> Record:
    """GET /site.json, per the spec's Site component (plus the site's time zone)."""
    cfg = ds.cfg
    return {
        "id": SITE_ID,
        "name": f"{cfg.subdomain.capitalize()} (sandbox)",
        "subdomain": cfg.subdomain,
        "currency": "USD",
        "seller_id": 4_200,
        "non_primary_currencies": ["EUR"],
        "relationship_invoicing_enabled": cfg.invoicing == "relationship",
        "schedule_subscription_cancellation_enabled": True,
        "customer_hierarchy_enabled": True,
        "whopays_enabled": False,
        "whopays_default_payer": "self-ui",
        "allocation_settings": {
            "upgrade_charge": "prorated",
            "downgrade_credit": "none",
            "accrue_charge": "true",
        },
        "default_payment_collection_method": "automatic",
        "organization_address": {
            "street": "123 General Goods Way",
            "line2": "Apt. 10",
            "city": "Boston",
            "state": "MA",
            "zip": "02120",
            "country": "US",
            "name": "General Goods",
            "phone": "555-555-1212",
        },
        "tax_configuration": {
            "kind": "custom",
            "destination_address": "shipping_then_billing",
            "fully_configured": True,
        },
        "net_terms": {
            "default_net_terms": 0,
            "automatic_net_terms": 0,
            "remittance_net_terms": 30,
            "net_terms_on_remittance_signups_enabled": False,
            "custom_net_terms_enabled": False,
        },
        "multi_frequency_enabled": False,
        "auto_renewals_enabled": False,
        "portal_enabled": True,
        "test": True,
    }
