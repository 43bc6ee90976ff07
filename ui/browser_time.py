"""Times in the reader's own time zone.

The server only knows UTC; the browser knows where its reader is. A time goes into the page
as `<time datetime="…Z">` with the UTC text as a fallback, and one page script rewrites every
such element, whenever a component renders one, in the browser's locale and zone (the exact
UTC time stays in the tooltip).
"""

from __future__ import annotations

from datetime import UTC, datetime

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
