"""Times in the reader's own time zone.

The server only knows UTC; the browser knows where its reader is. A time goes into the page
as `<time datetime="…Z">` with the UTC text as a fallback, and the HTML component's script
rewrites the text with the browser's locale and zone (the exact UTC stays in the tooltip).
"""

from __future__ import annotations

from datetime import UTC, datetime

# For a gr.HTML `js_on_load`: rewrite every <time> now and after each new value.
LOCAL_TIMES_JS = """
const showLocalTimes = () => element.querySelectorAll("time[datetime]").forEach((t) => {
  const moment = new Date(t.dateTime);
  if (Number.isNaN(moment.getTime())) return;
  t.title = t.dateTime;
  t.textContent = moment.toLocaleString([], {dateStyle: "medium", timeStyle: "short"});
});
showLocalTimes();
watch("value", showLocalTimes);
"""


def time_tag(moment: datetime) -> str:
    """A <time> element for `moment` (naive means UTC, as the database stores it)."""
    utc = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    return (f'<time datetime="{utc:%Y-%m-%dT%H:%M:%SZ}">'
            f'{utc:%Y-%m-%d %H:%M} UTC</time>')
