"""How the Review tab shows the queue: the card of the message under review, the compact
list below it, and the keys that work them.

Pure formatting (HTML strings from queue items) plus the page scripts; ui/review_tab.py
wires them to the handlers. Everything from the database is escaped here.
"""

from __future__ import annotations

import html
from datetime import datetime

from classifier.review.queue import QueueItem
from ui.browser_time import time_tag
from ui.ids import SHORT_ID, id_tag

LIST_TEXT_CHARS = 300  # the list shows two lines of a message; the card shows all of it
# One phrase per reason code of the queue (feedback.review_store.ReviewCandidate.reasons).
REASON_WORDS = {"thumbs_down": "rated thumbs-down by the user",
                "low_confidence": "low confidence ({confidence:.2f})",
                "thumbs_up": "rated thumbs-up by the user"}


def reasons_in_words(item: QueueItem) -> str:
    return ", ".join(REASON_WORDS.get(r, r).format(confidence=item.confidence)
                     for r in item.reasons) or "picked by hand"


def _received(item: QueueItem) -> str:
    return time_tag(datetime.fromisoformat(item.created_at))


def _suggestion(item: QueueItem) -> str:
    if item.suggested_label is None:
        return "no suggestion (thumbs-down without a category): correct it or discard it"
    if item.verdict == "down":
        return f"<b>{html.escape(item.suggested_label)}</b> (the rater's correction)"
    return f"<b>{html.escape(item.suggested_label)}</b> (the model's answer)"


def card_html(item: QueueItem | None, reviewer: str) -> str:
    """The message under review, in full, with what the model said and why it is here."""
    who = f"Decisions are recorded as <b>{html.escape(reviewer)}</b>."
    if item is None:
        return (f'<div class="rv-card rv-empty"><p>Nothing waits for review here.</p>'
                f'<p class="rv-meta">{who}</p></div>')
    version = "" if item.model_version is None else f" · model version {item.model_version}"
    return f"""<div class="rv-card">
<p class="rv-meta">Received {_received(item)} · request {id_tag(item.request_id)}{version}</p>
<blockquote class="rv-text">{html.escape(item.text)}</blockquote>
<p>Model said <b>{html.escape(item.predicted_label)}</b> ({item.confidence:.2f})
· suggested: {_suggestion(item)}</p>
<p class="rv-why">Why it is here: {html.escape(reasons_in_words(item))}</p>
<p class="rv-meta">{who}</p>
</div>"""


def queue_html(items: list[QueueItem], current: str | None) -> str:
    """The pending messages, message first; a click picks one (row index, see QUEUE_JS)."""
    if not items:
        return '<p class="rq-empty">The queue is empty.</p>'
    rows = []
    for index, item in enumerate(items):
        text = item.text if len(item.text) <= LIST_TEXT_CHARS else (
            item.text[:LIST_TEXT_CHARS].rstrip() + "…")
        suggested = (f" → {html.escape(item.suggested_label)}"
                     if item.suggested_label not in (None, item.predicted_label) else "")
        mark = ' aria-current="true"' if item.request_id == current else ""
        rows.append(
            f'<li><button type="button" class="rq-row" data-row="{index}"{mark}>'
            f'<span class="rq-text">{html.escape(text)}</span>'
            f'<span class="rq-meta">{html.escape(reasons_in_words(item))} · '
            f'{html.escape(item.predicted_label)}{suggested} · '
            f'<span title="{html.escape(item.request_id)}">'
            f'{html.escape(item.request_id[:SHORT_ID])}</span> · {_received(item)}</span>'
            "</button></li>")
    return f'<ol class="rq">{"".join(rows)}</ol>'


def category_choices(labels: list[str]) -> list[tuple[str, str]]:
    """Radio choices numbered for the keys 1..9 (a tenth category has no key)."""
    return [(f"{n} · {label}" if n <= 9 else label, label)
            for n, label in enumerate(labels, start=1)]


QUEUE_JS = """
element.addEventListener("click", (event) => {
  const row = event.target.closest("[data-row]");
  if (!row) return;
  element.querySelectorAll("[aria-current]").forEach((r) => r.removeAttribute("aria-current"));
  row.setAttribute("aria-current", "true");
  trigger("pick", {row: Number(row.dataset.row)});
});
"""
CARD_CSS = """
.rv-card { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: .5rem 1rem; background: var(--background-fill-secondary); }
.rv-text { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 1.1rem;
  margin: .5rem 0; padding-left: .8rem; border-left: 4px solid var(--color-accent); }
.rv-meta, .rv-meta * { color: var(--body-text-color-subdued); font-size: .9rem; }
"""
QUEUE_CSS = """
.rq { list-style: none; margin: 0; padding: 0; max-height: 28rem; overflow-y: auto; }
.rq-row { display: block; width: 100%; text-align: left; padding: .4rem .6rem;
  border: 0; border-bottom: 1px solid var(--border-color-primary); background: none;
  color: inherit; font-weight: normal; cursor: pointer; }
.rq-row:hover, .rq-row[aria-current] { background: var(--color-accent-soft); }
.rq-text { display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical;
  overflow: hidden; overflow-wrap: anywhere; }
.rq-meta, .rq-meta * { color: var(--body-text-color-subdued); font-size: .85rem;
  font-weight: normal; overflow-wrap: anywhere; }
.rq-meta { display: block; }
"""
# Keys on the Review tab: 1-9 pick a category, A accept, C or Enter correct, D or X discard.
# Never while typing in a field, never with a modifier, and only while the tab is open.
REVIEW_KEYS_JS = """() => {
  const typing = (el) => el instanceof HTMLElement && (el.isContentEditable
    || ["TEXTAREA", "SELECT"].includes(el.tagName) || (el.tagName === "INPUT"
    && !["radio", "checkbox", "button", "submit"].includes(el.type)));
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat
        || typing(event.target)) return;
    const card = document.querySelector("#review-card");
    if (!card || !card.checkVisibility()) return;
    const press = (id) => {
      const button = document.querySelector(id);
      if (button && !button.disabled) { event.preventDefault(); button.click(); }
    };
    const key = event.key.toLowerCase();
    if (/^[1-9]$/.test(key)) {
      const option = document.querySelectorAll("#review-category input[type=radio]")[key - 1];
      if (option) { event.preventDefault(); option.click(); }
    } else if (key === "a") press("#review-accept");
    else if (key === "c") press("#review-correct");
    else if (key === "d" || key === "x") press("#review-discard");
    else if (key === "enter" && !event.target.closest?.("button, a, [role=tab]")
             && document.querySelector("#review-category input:checked")) {
      press("#review-correct");
    }
  });
}"""
