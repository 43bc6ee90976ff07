"""Times in the reader's own time zone.

The server only knows UTC; the browser knows where its reader is. A time goes into the page
as `<time datetime="…Z">` with the UTC text as a fallback, and one page script rewrites every
such element, whenever a component renders one, in the browser's locale and zone (the exact
UTC time stays in the tooltip).
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The page's own zone name (IANA, such as "Europe/Paris"), sent with a chart request.
ZONE_JS = "Intl.DateTimeFormat().resolvedOptions().timeZone"
MAX_ZONE_NAME = 64  # the longest IANA name is about 32 characters

# A gr.Dataframe column's datatype; a column of time_tag() elements is "html".
ColumnType = Literal["str", "number", "bool", "date", "markdown", "html"]

LOCAL_TIMES_JS = """() => {
  const local = (t) => {
    const moment = new Date(t.dateTime);
    if (t.dataset.local === t.dateTime || Number.isNaN(moment.getTime())) return;
    t.dataset.local = t.dateTime;  // done: the observer sees this change too
    t.title = t.dateTime;
    t.textContent = moment.toLocaleString([], {dateStyle: "medium", timeStyle: "short"});
  };
  const all = () => document.querySelectorAll("time[datetime]").forEach(local);
  new MutationObserver(all).observe(document.body, {childList: true, subtree: true,
                                                    characterData: true});
  all();
}"""


def time_tag(moment: datetime) -> str:
    """A <time> element for `moment` (naive means UTC, as the database stores it)."""
    utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    return (f'<time datetime="{utc:%Y-%m-%dT%H:%M:%SZ}">'
            f'{utc:%Y-%m-%d %H:%M} UTC</time>')


def reader_zone(name: object) -> tzinfo:
    """The zone a page reported, or UTC for anything that is not a known zone name (the
    value comes from the browser, so it is checked like any input)."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_ZONE_NAME:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # unknown, or a path-like key
        return UTC
