"""Request ids as people see them: the first characters, the whole id one click away.

A 32-character id is noise on screen but what a support ticket or the REST API needs, so
the page shows SHORT_ID characters, keeps the full id in the tooltip, and a copy button puts
it on the clipboard (COPY_ID_JS, attached to the component that shows the id).
"""

from __future__ import annotations

import html

SHORT_ID = 8  # characters of a request id shown; the full id stays one copy away

COPY_ID_JS = """
element.addEventListener("click", (event) => {
  const copy = event.target.closest("[data-copy]");
  if (!copy) return;
  navigator.clipboard?.writeText(copy.dataset.copy).then(() => { copy.textContent = "copied"; });
});
"""

ID_CSS = """
.short-id { font-family: var(--font-mono); }
.copy-id { font-size: .8rem; padding: 0 .4rem; border: 1px solid var(--border-color-primary);
  border-radius: 4px; cursor: pointer; color: var(--body-text-color);
  background: var(--background-fill-primary); }
"""


def id_tag(request_id: str) -> str:
    """The short id with the full one in its tooltip, and a button that copies the full id."""
    full = html.escape(request_id)
    return (f'<code class="short-id" title="{full}">{html.escape(request_id[:SHORT_ID])}</code> '
            f'<button type="button" class="copy-id" data-copy="{full}" '
            f'aria-label="Copy the full request id" title="Copy {full}">copy</button>')
