"""Column store with sorted indexes, so that lists over 500k rows stay cheap.

A row is a position in a set of int64 arrays (8 bytes per field instead of a dict per
record); text and nested objects are derived at render time. Every index orders rows by
one column with ties broken by primary key ascending, which makes page-number paging over
an unchanged set deterministic; date ranges are found with bisect.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

NULL = -(2**63)
"""Stored for a missing value (a null timestamp, no coupon...)."""

Key = tuple[int, ...]
RowRange = tuple[int | None, int | None]
Scope = tuple[str, int]
"""(column, value): the rows of one parent record."""
Only = tuple[str, frozenset[int]]
"""(column, values): the rows whose column holds one of the values (NULL: no value)."""


def _probe(*parts: int) -> Key:
    return parts


class SortedIndex:
    """Rows ordered by one column; NULLs last when ascending, first when descending."""

    def __init__(self, table: Table, column: str, descending: bool) -> None:
        """Sort the table's rows now; keeping them sorted is up to the table."""
        self.column = column
        self.descending = descending
        col = table.cols[column]
        pk = table.pk
        key: Callable[[int], Key]
        if descending:

            def key(r: int) -> Key:
                v = col[r]
                return (0, 0, pk[r]) if v == NULL else (1, -v, pk[r])

        else:

            def key(r: int) -> Key:
                v = col[r]
                return (1, 0, pk[r]) if v == NULL else (0, v, pk[r])

        self.key = key
        self.rows = array("q", sorted(table.live_rows(), key=key))

    def span(self, lo: int | None, hi: int | None) -> tuple[int, int]:
        """Positions [a, b) of the rows whose non-null value lies in [lo, hi]."""
        # Probes are key prefixes: (0, v) sorts before every (0, v, pk).
        rows, key = self.rows, self.key
        if self.descending:  # keys (1, -v, pk), after the NULLs
            first = _probe(1) if hi is None else _probe(1, -hi)
            after = _probe(2) if lo is None else _probe(1, -lo + 1)
        else:  # keys (0, v, pk), then the NULLs
            first = _probe(0) if lo is None else _probe(0, lo)
            after = _probe(1) if hi is None else _probe(0, hi + 1)
        a = bisect_left(rows, first, key=key)
        b = bisect_left(rows, after, key=key)
        return a, max(a, b)

    def remove(self, row: int) -> None:
        """Take a row out, before its column value changes."""
        i = bisect_left(self.rows, self.key(row), key=self.key)
        if i >= len(self.rows) or self.rows[i] != row:
            raise LookupError(f"row {row} missing from index on {self.column}")
        del self.rows[i]

    def insert(self, row: int) -> None:
        """Put a row in its place, after its column value changed."""
        insort(self.rows, row, key=self.key)


class Table:
    """The rows of one collection: int64 columns, sparse text overrides, lazy indexes."""

    #: Bumped on a change of any table: a rendered record may show other tables' rows.
    changes: ClassVar[int] = 0

    def __init__(self, columns: Iterable[str], *, pk_ascending: bool = True) -> None:
        """Empty columns `pk`, `_seq` and `columns`; `pk_ascending` if keys grow by row."""
        names = ["pk", "_seq", *columns]
        self.cols: dict[str, array[int]] = {n: array("q") for n in names}
        self.pk = self.cols["pk"]
        # Rendered fields replaced by mutations (an email, a memo): sparse on purpose.
        self.extra: dict[int, dict[str, Any]] = {}
        self.version = 0  # bumped on each change; keys the query cache
        self.seq = 0  # change counter; a row's _seq is the value at its last change
        self._pk_ascending = pk_ascending
        self._pk_rows: dict[int, int] | None = None
        # Deleted rows keep their values (what references them still renders) but leave
        # every index, so lists, counts and pages skip them.
        self._deleted: set[int] = set()
        self._indexes: dict[tuple[str, bool], SortedIndex] = {}
        self._cache: OrderedDict[tuple[Any, ...], array[int]] = OrderedDict()

    def __len__(self) -> int:
        """The number of rows, deleted ones included: the next row's position."""
        return len(self.pk)

    def live_rows(self) -> Sequence[int]:
        """The rows not deleted, in row order."""
        if not self._deleted:
            return range(len(self.pk))
        return [r for r in range(len(self.pk)) if r not in self._deleted]

    def is_deleted(self, row: int) -> bool:
        """Whether a row was deleted."""
        return row in self._deleted

    def delete(self, row: int) -> None:
        """Take a row out of every index and list; its values stay for references."""
        if row in self._deleted:
            raise KeyError(f"row {row} is already deleted")
        for ix in self._indexes.values():
            ix.remove(row)
        self._deleted.add(row)
        self.seq += 1
        self.version += 1
        Table.changes += 1

    def get(self, row: int, column: str) -> int | None:
        """A value, None for NULL."""
        v = self.cols[column][row]
        return None if v == NULL else v

    def row_of(self, pk: int, *, deleted: bool = False) -> int:
        """The row holding a primary key (KeyError if none, or deleted unless `deleted`)."""
        if self._pk_ascending:
            i = bisect_left(self.pk, pk)
            if i >= len(self.pk) or self.pk[i] != pk:
                raise KeyError(pk)
        else:
            if self._pk_rows is None:
                self._pk_rows = {v: r for r, v in enumerate(self.pk)}
            i = self._pk_rows[pk]
        if not deleted and i in self._deleted:
            raise KeyError(pk)
        return i

    def append(self, values: Mapping[str, int | None]) -> int:
        """Add a row; columns not given are NULL."""
        row = len(self.pk)
        if self._pk_ascending and row and values["pk"] <= self.pk[-1]:  # type: ignore[operator]
            raise ValueError("primary keys must grow with the row number")
        self.seq += 1
        for name, col in self.cols.items():
            v = values.get(name)
            col.append(NULL if v is None else v)
        self.cols["_seq"][row] = self.seq
        if self._pk_rows is not None:
            self._pk_rows[self.pk[row]] = row
        for index in self._indexes.values():
            index.insert(row)
        self.version += 1
        Table.changes += 1
        return row

    def update(self, row: int, values: Mapping[str, int | None]) -> None:
        """Change columns of a row, keeping every built index in order."""
        if row in self._deleted:
            raise KeyError(f"row {row} is deleted")
        touched = [ix for (c, _), ix in self._indexes.items() if c in values]
        for ix in touched:
            ix.remove(row)
        for name, v in values.items():
            self.cols[name][row] = NULL if v is None else v
        for ix in touched:
            ix.insert(row)
        self.seq += 1
        self.cols["_seq"][row] = self.seq
        self.version += 1
        Table.changes += 1

    def index(self, column: str, descending: bool = False) -> SortedIndex:
        """The index on a column, built on first use and maintained from then on."""
        ix = self._indexes.get((column, descending))
        if ix is None:
            ix = self._indexes[(column, descending)] = SortedIndex(self, column, descending)
        return ix

    def select(
        self,
        order: str,
        descending: bool,
        *,
        where: str | None,
        bounds: RowRange,
        offset: int,
        limit: int,
        scope: Scope | None = None,
        only: Only | None = None,
    ) -> list[int]:
        """One page of rows ordered by `order`, optionally only `where` within bounds.

        `scope` (column, value) keeps only the rows of one parent record, `only` those
        with one of some values in a column (not archived, of some event types).
        """
        if scope is not None:
            rows = self._scoped(order, descending, where, bounds, scope, only=only)
            return rows[offset : offset + limit]
        ordered = self.index(order, descending)
        if only is not None:
            return self._result(order, descending, where, bounds, only)[
                offset : offset + limit
            ].tolist()
        if where is None:
            return ordered.rows[offset : offset + limit].tolist()
        if where == order:
            a, b = ordered.span(*bounds)
            return ordered.rows[min(a + offset, b) : min(a + offset + limit, b)].tolist()
        return self._result(order, descending, where, bounds, None)[
            offset : offset + limit
        ].tolist()

    def count(
        self,
        order: str,
        descending: bool,
        *,
        where: str | None,
        bounds: RowRange,
        scope: Scope | None = None,
        only: Only | None = None,
    ) -> int:
        """How many rows select() pages through, for envelopes that carry a total."""
        if scope is not None:
            return len(self._scoped(order, descending, where, bounds, scope, only=only))
        if only is not None:
            return len(self._result(order, descending, where, bounds, only))
        if where is None:
            return len(self.pk) - len(self._deleted)
        a, b = self.index(where).span(*bounds)
        return b - a

    def _result(
        self, order: str, descending: bool, where: str | None, bounds: RowRange, only: Only | None
    ) -> array[int]:
        # Compute the whole result once per version of the table, so that paging
        # through it costs a slice per request.
        cache_key = (self.version, order, descending, where, bounds, only)
        hit = self._cache.get(cache_key)
        if hit is None:
            ordered = self.index(order, descending)
            hit = ordered.rows if where is None else self._filter_sorted(ordered, where, bounds)
            if only is not None:
                col, values = self.cols[only[0]], only[1]
                hit = array("q", [r for r in hit if col[r] in values])
            self._cache[cache_key] = hit
            if len(self._cache) > 8:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(cache_key)
        return hit

    def _scoped(
        self,
        order: str,
        descending: bool,
        where: str | None,
        bounds: RowRange,
        scope: Scope,
        *,
        only: Only | None,
    ) -> list[int]:
        # A parent has a handful of children: filter and sort them on each request.
        column, value = scope
        a, b = self.index(column).span(value, value)
        rows = self.index(column).rows[a:b].tolist()
        if where is not None:
            col = self.cols[where]
            lo = NULL + 1 if bounds[0] is None else bounds[0]
            hi = -NULL - 1 if bounds[1] is None else bounds[1]
            rows = [r for r in rows if lo <= col[r] <= hi]
        if only is not None:
            col, values = self.cols[only[0]], only[1]
            rows = [r for r in rows if col[r] in values]
        rows.sort(key=self.index(order, descending).key)
        return rows

    def _filter_sorted(self, ordered: SortedIndex, where: str, bounds: RowRange) -> array[int]:
        a, b = self.index(where).span(*bounds)
        if (b - a) * 8 < len(self):
            # Few matches: sorting them beats scanning the whole table.
            return array("q", sorted(self.index(where).rows[a:b], key=ordered.key))
        col = self.cols[where]
        lo = NULL + 1 if bounds[0] is None else bounds[0]
        hi = -NULL - 1 if bounds[1] is None else bounds[1]
        return array("q", [r for r in ordered.rows if lo <= col[r] <= hi])
