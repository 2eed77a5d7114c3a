"""The site's clock: UTC instants in, the site's local offsets out, and back."""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

# Maxio documents "YYYY-MM-DD HH:MM:SS" and accepts ISO-8601 too. The offset sign may be
# a space: an unencoded "+" in a query string decodes to one.
_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?)?"
    r"(?:(Z|UTC)|([+\- ])(\d{2}):?(\d{2}))?$",
    re.IGNORECASE,
)
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class SiteClock:
    """Renders and parses timestamps the way a site in one time zone does."""

    def __init__(self, tz_name: str) -> None:
        """Use an IANA zone name such as America/New_York."""
        self.tz = ZoneInfo(tz_name)
        self.tz_name = tz_name

    def iso(self, ts: int) -> str:
        """Render a stored second in the site's offset, e.g. 2024-03-10T01:59:59.123-05:00.

        The second's fraction (see `fraction`) is shown when it has one.
        """
        ms = fraction_ms(ts)
        moment = datetime.fromtimestamp(ts, self.tz).replace(microsecond=ms * 1000)
        return moment.isoformat(timespec="milliseconds" if ms else "seconds")

    def iso_or_none(self, ts: int | None) -> str | None:
        """Like iso(), passing None through."""
        return None if ts is None else self.iso(ts)

    def local_date(self, ts: int) -> date:
        """The site-local calendar day of an instant."""
        return datetime.fromtimestamp(ts, self.tz).date()

    def day_start(self, day: date) -> int:
        """The first second of a local calendar day."""
        return int(datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp())

    def day_bounds(self, day: date) -> tuple[int, int]:
        """First and last second of a local day (23 or 25 hours long on DST days)."""
        return self.day_start(day), self.day_start(day + timedelta(days=1)) - 1

    def parse_datetime(self, text: str) -> float | None:
        """A query-string datetime as a UTC epoch; one without an offset is site-local."""
        m = _DATETIME.match(text.strip())
        if not m:
            return None
        year, month, day, hour, minute, second, frac, zulu, sign, oh, om = m.groups()
        try:
            if zulu:
                tz: timezone | ZoneInfo = timezone.utc
            elif sign:
                delta = timedelta(hours=int(oh), minutes=int(om))
                tz = timezone(-delta if sign == "-" else delta)
            else:
                tz = self.tz
            moment = datetime(
                int(year),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                tzinfo=tz,
            )
        except ValueError:
            return None
        return moment.timestamp() + (float(frac) if frac else 0.0)

    def transitions(self, start: int, end: int) -> list[int]:
        """Instants in [start, end] at which the site's UTC offset changes."""
        found: list[int] = []
        day = 86_400
        t = start
        while t < end:
            nxt = min(t + day, end)
            if self._offset(t) != self._offset(nxt):
                lo, hi = t, nxt  # the offset differs at lo and hi: bisect to the second
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if self._offset(mid) == self._offset(lo):
                        lo = mid
                    else:
                        hi = mid
                found.append(hi)
            t = nxt
        return found

    def _offset(self, ts: int) -> timedelta | None:
        return datetime.fromtimestamp(ts, self.tz).utcoffset()


def fraction_ms(ts: int) -> int:
    """Milliseconds past the stored second `ts` of the instant it stands for.

    Maxio sends some timestamps with milliseconds. Every timestamp of one second
    gets the same fraction, so that a filter bound still selects whole runs of
    seconds; two seconds in three have one.
    """
    return 0 if ts % 3 == 0 else 1 + (ts * 2_654_435_761 >> 7) % 999


def first_second_from(moment: float) -> int:
    """The first stored second whose instant is at or after `moment`."""
    second = math.floor(moment)
    return second if second + fraction_ms(second) / 1000 >= moment else second + 1


def last_second_until(moment: float) -> int:
    """The last stored second whose instant is at or before `moment`."""
    second = math.floor(moment)
    return second if second + fraction_ms(second) / 1000 <= moment else second - 1


def parse_date(text: str) -> date | None:
    """A YYYY-MM-DD query value, or None when malformed."""
    m = _DATE.match(text.strip())
    if not m:
        return None
    try:
        return date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None
