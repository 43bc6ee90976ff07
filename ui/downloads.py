"""Files the page offers for download (classified batches, review queue exports)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from gradio.utils import get_upload_folder


def scratch_folder(prefix: str) -> Path:
    """A new folder inside Gradio's cache for a file the page will download: Gradio then
    serves it without copying it and deletes it with the uploads (TEMP_FILE_MINUTES), so no
    customer data outlives the visit."""
    cache = Path(get_upload_folder())
    cache.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=cache))
