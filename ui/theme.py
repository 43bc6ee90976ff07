"""The page's look: Gradio's default theme with every text colour at WCAG AA contrast.

Gradio's default orange puts white button text and the selected tab at 2.8:1 and the
placeholder at 1.9:1; AA asks 4.5:1 for normal text. The primary colour here is the same
orange two steps darker, and the muted greys one step darker. Gradio switches to the dark
palette by the browser's prefers-color-scheme, so both palettes are set
(tests/ui/test_accessibility.py runs axe-core on every tab in both).
"""

from __future__ import annotations

import gradio as gr
from gradio.themes.utils import colors

from ui.icons import icon_css
from ui.ids import ID_CSS

# Contrast against white (light) and against Gradio's dark page (#0b0f19 .. zinc-800):
#   orange-700 #c2410c with white text 5.2:1, orange-800 (hover) 7.3:1;
#   zinc-600 #52525b on white 7.7:1 (placeholder, muted text), zinc-700 on zinc-200 8.2:1
#   (the label of an empty table);
#   orange-400 #fb923c on zinc-900 7.8:1 (selected tab and links in dark mode).
THEME = gr.themes.Default(primary_hue=colors.orange, neutral_hue=colors.zinc).set(
    color_accent="*primary_700",
    button_primary_background_fill="*primary_700",
    button_primary_background_fill_hover="*primary_800",
    button_primary_background_fill_dark="*primary_700",
    button_primary_background_fill_hover_dark="*primary_800",
    button_primary_text_color="white",
    button_primary_text_color_dark="white",
    input_placeholder_color="*neutral_600",
    input_placeholder_color_dark="*neutral_400",
    body_text_color_subdued="*neutral_600",
    body_text_color_subdued_dark="*neutral_400",
    block_info_text_color="*neutral_600",
    block_info_text_color_dark="*neutral_400",
    block_label_text_color="*neutral_700",
    link_text_color="*primary_800",
    link_text_color_hover="*primary_900",
    link_text_color_visited="*primary_800",
    link_text_color_dark="*primary_400",
    link_text_color_hover_dark="*primary_300",
    link_text_color_visited_dark="*primary_400",
)

# Gradio has no dark variant of the accent colour: it is set here for the dark palette.
DARK_ACCENT_CSS = ".dark { --color-accent: var(--primary-400); }"

PAGE_CSS = "\n".join([DARK_ACCENT_CSS, ID_CSS, icon_css()])
