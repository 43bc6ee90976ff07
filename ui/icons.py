"""Icons the page draws itself, so they look the same on every machine.

An emoji is a character: where no emoji font is installed it shows as an empty box. These
icons are SVG shapes painted by the page's CSS (a mask filled with the icon's colour), put
into Markdown and HTML by `icon(name)` and onto buttons by element id. Most are decoration,
hidden from screen readers, next to words that say the same thing; an icon that stands
alone carries its meaning as text that only screen readers see. (Not `aria-label`: Gradio's
Markdown sanitiser drops aria attributes but keeps `role`, which left an unnamed image.)
"""

from __future__ import annotations

import html
from urllib.parse import quote

# 24x24 outlines; "evenodd" cuts the inner shapes (the check in the circle, ...) out.
SHAPES: dict[str, str] = {
    "ok": "M12 2a10 10 0 1 0 0 20a10 10 0 1 0 0-20zM10.6 16.2 6.3 11.9l1.4-1.4 2.9 2.9 "
          "5.7-5.7 1.4 1.4z",
    "error": "M12 2a10 10 0 1 0 0 20a10 10 0 1 0 0-20zM8.5 7.1 12 10.6l3.5-3.5 1.4 1.4-3.5 "
             "3.5 3.5 3.5-1.4 1.4-3.5-3.5-3.5 3.5-1.4-1.4 3.5-3.5-3.5-3.5z",
    "warning": "M12 2 1 21h22zM11 9h2v6h-2zM11 17h2v2h-2z",
    "alert": "M12 22a2 2 0 0 0 2-2h-4a2 2 0 0 0 2 2zm6-6v-5a6 6 0 0 0-5-5.9V4a1 1 0 0 0-2 "
             "0v1.1A6 6 0 0 0 6 11v5l-2 2v1h16v-1z",
    "watch": "M12 5C6 5 2 12 2 12s4 7 10 7 10-7 10-7-4-7-10-7zm0 3a4 4 0 1 0 0 8a4 4 0 1 0 "
             "0-8z",
    "lock": "M6 10V7a6 6 0 0 1 12 0v3h1v12H5V10zm2 0h8V7a4 4 0 0 0-8 0z",
    "pending": "M6 2h12v6l-4 4 4 4v6H6v-6l4-4-4-4zm2 2v3.2l4 4 4-4V4z",
    "running": "M12 2a10 10 0 1 0 0 20a10 10 0 1 0 0-20zM10 8l6 4-6 4z",
    "up": "M1 21h4V9H1zm22-11a2 2 0 0 0-2-2h-6.3l1-4.6V3a1.5 1.5 0 0 0-.4-1L14.2 1 7.6 7.6A2 "
          "2 0 0 0 7 9v10a2 2 0 0 0 2 2h9a2 2 0 0 0 1.8-1.2l3-7a2 2 0 0 0 .2-.8z",
    "edit": "M3 17.2V21h3.8L17.8 9.9l-3.7-3.7zM20.7 7a1 1 0 0 0 0-1.4l-2.3-2.3a1 1 0 0 0-1.4 "
            "0l-1.8 1.8 3.7 3.7z",
    "trash": "M6 19a2 2 0 0 0 2 2h8a2 2 0 0 0 2-2V7H6zM19 4h-3.5l-1-1h-5l-1 1H5v2h14z",
}
# Colours with at least 3:1 against the page in light and in dark mode (WCAG 1.4.11).
COLOURS = {"ok": ("#15803d", "#4ade80"), "error": ("#b91c1c", "#f87171"),
           "warning": ("#b45309", "#fbbf24"), "alert": ("#b91c1c", "#f87171")}
# Buttons that carry an icon before their label, by element id.
BUTTON_ICONS = {"thumbs-up": "up", "thumbs-down": "down", "review-accept": "ok",
                "review-correct": "edit", "review-discard": "trash"}


def icon(name: str, label: str = "") -> str:
    """An inline icon for Markdown or HTML, read out as `label` if given (else silent);
    `down` is the thumb of `up`, turned over."""
    if name != "down" and name not in SHAPES:
        raise KeyError(f"no icon named {name!r}")
    mark = f'<span class="st-icon st-icon-{name}" aria-hidden="true"></span>'
    return mark + (f'<span class="st-sr">{html.escape(label)}</span>' if label else "")


def _mask(name: str) -> str:
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
           f'<path fill-rule="evenodd" d="{SHAPES[name]}"/></svg>')
    url = f'url("data:image/svg+xml,{quote(svg)}")'
    return f"-webkit-mask-image: {url}; mask-image: {url};"


def icon_css() -> str:
    """The stylesheet behind `icon()` and BUTTON_ICONS."""
    buttons = ", ".join(f"#{elem_id}::before" for elem_id in BUTTON_ICONS)
    rules = [
        f""".st-icon, {buttons} {{ display: inline-block; width: 1.1em; height: 1.1em;
  vertical-align: -0.2em; background-color: currentColor;
  -webkit-mask-repeat: no-repeat; mask-repeat: no-repeat; -webkit-mask-size: contain;
  mask-size: contain; flex: none; }}""",
        f"{buttons} {{ content: ''; margin-right: .3em; }}",
        ".st-icon-down, #thumbs-down::before { transform: rotate(180deg); }",
        # Read out, not shown: the usual visually-hidden pattern.
        ".st-sr { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; "
        "overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }",
        f".st-icon-down, #thumbs-down::before {{ {_mask('up')} }}",
    ]
    rules += [f".st-icon-{name} {{ {_mask(name)} }}" for name in SHAPES]
    rules += [f"#{elem_id}::before {{ {_mask(name)} }}"
              for elem_id, name in BUTTON_ICONS.items() if name != "down"]
    for name, (light, dark) in COLOURS.items():
        rules += [f".st-icon-{name} {{ background-color: {light}; }}",
                  f".dark .st-icon-{name} {{ background-color: {dark}; }}"]
    return "\n".join(rules)
