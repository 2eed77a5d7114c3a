"""Every stream emits exactly the site's keys, over many small pages, also when resumed."""

from __future__ import annotations

import typing as t

import pytest
from conftest import Run, run_tap, sandbox_config, select_only, site_records, tap_config

from maxio_sandbox import Sandbox
from tap_maxio.readers import BACKFILL
from tap_maxio.streams import STREAM_TYPES
from tap_maxio.tap import TapMaxio

if t.TYPE_CHECKING:
    from tap_maxio.client import MaxioStream

LEGACY = {"statements", "transactions", "legacy_invoices"}
CHILDREN = {s.name for s in STREAM_TYPES if s.parent_stream_type is not None}
#: Incremental streams read in more than one request (product_families is unpaged).
INCREMENTAL = [s.name for s in STREAM_TYPES if s.spec.replication != "full_table" and s.spec.paged]
#: Small pages, so that lists of three records already take two requests.
PAGE_SIZE = 2
#: A smaller site than the other tests', to keep the many small requests quick.
COUNTS = {"subscriptions": 80, "customers": 50, "invoices": 60, "events": 90}


class Site:
    """A sandbox site, full syncs of it, and syncs resumed from their middle.

    A selected child has its parent read whole, without a bookmark: the
    children are synced apart, so that the parents have bookmarks to resume from.
    """

    def __init__(self, site: Sandbox, streams: set[str]) -> None:
        self.site = site
        self.config = tap_config(site, page_size=PAGE_SIZE)
        # A first sync without start_date: customers are backfilled by creation.
        del self.config["start_date"]
        self.tap = TapMaxio(config=self.config)
        self.full: dict[str, list[dict]] = {}
        self.before: dict[str, list[dict]] = {}
        self.state: dict[str, dict] = {}
        self.resumed: dict[str, list[dict]] = {}
        for part in (streams - CHILDREN, streams & CHILDREN):
            catalog = select_only(self.config, part)
            full = run_tap(self.config, catalog=catalog)
            before, state = self._cut_midway(full)
            resumed = run_tap(self.config, state={"bookmarks": state}, catalog=catalog)
            for stream in part:
                self.full[stream] = full.records[stream]
                self.before[stream] = before.get(stream, [])
                self.resumed[stream] = resumed.records[stream]
            self.state.update(state)

    @staticmethod
    def _cut_midway(run: Run) -> tuple[dict[str, list[dict]], dict[str, dict]]:
        """Each stream as if the run had been killed halfway through it.

        Returns the records each stream had emitted before the STATE message
        written halfway through its records, and those bookmarks.
        Streams are read one after another and keep their bookmarks apart, so
        one resumed run tries every stream's resume at once.
        """
        before: dict[str, list[dict]] = {}
        bookmarks: dict[str, dict] = {}
        for stream in run.records:
            at = [i for i, m in enumerate(run.messages) if m.get("stream") == stream]
            states = [
                i
                for i in range(at[0], at[-1])
                if run.messages[i]["type"] == "STATE"
                and stream in run.messages[i]["value"].get("bookmarks", {})
            ]
            cut = states[len(states) // 2] if states else at[0]
            before[stream] = [
                m["record"]
                for m in run.messages[:cut]
                if m["type"] == "RECORD" and m["stream"] == stream
            ]
            if states:
                bookmarks[stream] = run.messages[cut]["value"]["bookmarks"][stream]
        return before, bookmarks

    def keys(self, stream: str, records: list[dict]) -> set[tuple]:
        """The records' keys, by the stream's declared primary key."""
        keys = t.cast("MaxioStream", self.tap.streams[stream]).primary_keys
        return {tuple(r.get(k) for k in keys) for r in records}

    def expected(self, stream: str) -> set[tuple]:
        """The keys of the site's records of a stream, made records as the tap makes them."""
        tap_stream = t.cast("MaxioStream", self.tap.streams[stream])
        records = [
            tap_stream.post_process(dict(record), context)
            for record, context in site_records(self.site, stream)
        ]
        return self.keys(stream, [r for r in records if r is not None])


@pytest.fixture(scope="module")
def ri_site() -> t.Iterator[Site]:
    with Sandbox(sandbox_config(counts=COUNTS)) as site:
        yield Site(site, {s.name for s in STREAM_TYPES} - LEGACY)


@pytest.fixture(scope="module")
def legacy_site() -> t.Iterator[Site]:
    with Sandbox(sandbox_config(counts=COUNTS, invoicing="legacy")) as site:
        yield Site(site, LEGACY)


@pytest.fixture
def site(request: pytest.FixtureRequest, stream: str) -> Site:
    return t.cast("Site", request.getfixturevalue("legacy_site" if stream in LEGACY else "ri_site"))


@pytest.mark.parametrize("stream", [s.name for s in STREAM_TYPES])
def test_full_sync_emits_the_sites_keys(site: Site, stream: str) -> None:
    expected = site.expected(stream)
    assert expected, f"the sandbox has no {stream}"
    records = site.full[stream]
    assert len(records) == len(expected), f"{stream}: a key emitted twice, or one missing"
    assert site.keys(stream, records) == expected


@pytest.mark.parametrize("stream", [s.name for s in STREAM_TYPES])
def test_a_sync_resumed_midway_emits_the_rest(site: Site, stream: str) -> None:
    before = site.keys(stream, site.before[stream])
    after = site.keys(stream, site.resumed[stream])
    assert before | after == site.expected(stream)


def test_a_backfill_is_cut_midway_and_resumed(ri_site: Site) -> None:
    for stream, spec in ((s.name, s.spec) for s in STREAM_TYPES):
        if spec.backfill is not None:
            assert BACKFILL in ri_site.state[stream], f"{stream}: not cut in its backfill"


@pytest.mark.parametrize("stream", INCREMENTAL)
def test_incremental_streams_resume_from_their_middle(site: Site, stream: str) -> None:
    # The resume test above proves little where a stream starts over.
    assert stream in site.state
    full, before = len(site.full[stream]), len(site.before[stream])
    assert 0 < before < full
    assert len(site.resumed[stream]) < full
