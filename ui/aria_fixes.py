"""Two ARIA mistakes inside Gradio's own components, corrected in the page.

* The drop zone of a file upload is named "Click to upload or drop files" while it shows
  other words ("Drop File Here - or - Click to Upload"): someone using voice control, saying
  what they see, would miss it (WCAG 2.5.3). Without the label, the words shown are its name.
* An empty output (a Label before its first answer, a File with nothing to download) is a
  `div` with `aria-label="Empty value"` and no role, a label screen readers are not meant to
  read (WCAG 4.1.2). As an image of "Empty value" it is read as what it shows.

Components render again whenever their value changes, so the fixes run on every change of
the page.
"""

from __future__ import annotations

ARIA_FIXES_JS = """() => {
  const fix = () => {
    document.querySelectorAll(".upload-container[aria-label]")
      .forEach((zone) => zone.removeAttribute("aria-label"));
    document.querySelectorAll("div.empty[aria-label]:not([role])")
      .forEach((empty) => empty.setAttribute("role", "img"));
  };
  new MutationObserver(fix).observe(document.body, {childList: true, subtree: true});
  fix();
}"""
