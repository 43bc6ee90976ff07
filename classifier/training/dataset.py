"""Loading and validating training data from any UTF-8 CSV with a text and a label column.

Every problem with a file is reported as an InvalidInputError that names the file, the
column or the row, so a person can fix the CSV instead of reading a traceback.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from feedback.errors import InvalidInputError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DEFAULT_TRAIN = DATA_DIR / "train.csv"
DEFAULT_TEST = DATA_DIR / "test.csv"
DEFAULT_TAXONOMY = DATA_DIR / "taxonomy.json"
DEFAULT_LABEL_COLUMN = "category"
# Stratified holdout and cross-validation need at least this many rows of every label.
MIN_ROWS_PER_LABEL = 2
# Python's csv module refuses fields above 128 KiB by default; a support message never is.
csv.field_size_limit(10 * 1024 * 1024)


@dataclass(frozen=True)
class Dataset:
    """Texts with their labels, and the fingerprint of the file they came from."""

    texts: list[str]
    labels: list[str]
    source: str
    sha256: str
    skipped_rows: int

    @property
    def label_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))

    def fingerprint(self) -> dict[str, object]:
        return {
            "source": self.source,
            "sha256": self.sha256,
            "rows": len(self.texts),
            "skipped_rows": self.skipped_rows,
            "label_counts": self.label_counts,
        }


@dataclass(frozen=True)
class Taxonomy:
    """A mapping of fine labels onto named, defined categories."""

    name: str
    categories: dict[str, str]
    mapping: dict[str, str]

    def rollup(self, labels: list[str], source: str) -> dict[str, str]:
        """Fine label -> category for every label in `labels`; a label that is already a
        category maps onto itself (reviewed feedback is labelled with categories).

        Raises InvalidInputError naming `source` when a label has no category.
        """
        unmapped = sorted(set(labels) - set(self.mapping) - set(self.categories))
        if unmapped:
            shown = ", ".join(repr(label) for label in unmapped[:10])
            raise InvalidInputError(
                f"Taxonomy {self.name!r} has no category for {len(unmapped)} label(s) of "
                f"{source}: {shown}. Add them to its mapping."
            )
        return {label: self.mapping.get(label, label) for label in sorted(set(labels))}

    def apply(self, dataset: Dataset) -> Dataset:
        """The same rows labelled with their categories."""
        mapping = self.rollup(dataset.labels, dataset.source)
        return Dataset(
            texts=dataset.texts,
            labels=[mapping[label] for label in dataset.labels],
            source=dataset.source,
            sha256=dataset.sha256,
            skipped_rows=dataset.skipped_rows,
        )


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Read a taxonomy JSON file; raises InvalidInputError when it is malformed."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInputError(f"Taxonomy file {path} does not exist.") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"Taxonomy file {path} is not valid UTF-8 JSON: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("mapping"), dict):
        raise InvalidInputError(f'Taxonomy file {path} needs a "mapping" object.')
    categories = raw.get("categories") or {c: "" for c in raw["mapping"].values()}
    unknown = sorted(set(raw["mapping"].values()) - set(categories))
    if unknown:
        raise InvalidInputError(
            f"Taxonomy file {path} maps onto undefined categories: {', '.join(unknown)}."
        )
    return Taxonomy(name=str(raw.get("name") or path.stem), categories=categories,
                    mapping={str(k): str(v) for k, v in raw["mapping"].items()})


def load_dataset(path: str | Path, *, text_column: str = "text",
                 label_column: str = DEFAULT_LABEL_COLUMN) -> Dataset:
    """Read a CSV into a Dataset, skipping rows with an empty text or label.

    Raises InvalidInputError for a missing file, non-UTF-8 bytes, a missing column or no
    usable row.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise InvalidInputError(f"Data file {path} does not exist.") from exc
    except IsADirectoryError as exc:
        raise InvalidInputError(f"Data file {path} is a folder, not a CSV file.") from exc
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"Data file {path} is not UTF-8 (byte {exc.start}); re-save it as UTF-8 CSV."
        ) from exc
    if "\x00" in content:
        raise InvalidInputError(f"Data file {path} contains NUL bytes; it is not a text CSV.")
    # newline="" keeps line breaks inside quoted fields, as the csv module requires.
    reader = csv.DictReader(io.StringIO(content, newline=""))
    columns = reader.fieldnames or []
    for column in (text_column, label_column):
        if column not in columns:
            raise InvalidInputError(
                f"Data file {path} has no column {column!r}; its columns are "
                f"{', '.join(repr(c) for c in columns) or 'none'}. "
                "Choose with --text-column / --label-column."
            )
    texts: list[str] = []
    labels: list[str] = []
    skipped = 0
    try:
        for row in reader:
            text = (row.get(text_column) or "").strip()
            label = (row.get(label_column) or "").strip()
            if not text or not label:
                skipped += 1
                continue
            texts.append(text)
            labels.append(label)
    except csv.Error as exc:
        raise InvalidInputError(f"Data file {path} is not a valid CSV: {exc}") from exc
    if not texts:
        raise InvalidInputError(f"Data file {path} has no row with both a text and a label.")
    return Dataset(texts, labels, str(path), hashlib.sha256(raw).hexdigest(), skipped)


def check_trainable(dataset: Dataset) -> None:
    """Raise InvalidInputError unless every label has enough rows for a stratified split."""
    counts = dataset.label_counts
    if len(counts) < 2:
        raise InvalidInputError(
            f"Data file {dataset.source} has {len(counts)} distinct label(s) in "
            f"{len(dataset.texts)} usable rows; a classifier needs at least 2."
        )
    rare = [label for label, n in counts.items() if n < MIN_ROWS_PER_LABEL]
    if rare:
        raise InvalidInputError(
            f"Data file {dataset.source}: label(s) {', '.join(map(repr, rare[:10]))} have fewer "
            f"than {MIN_ROWS_PER_LABEL} rows; add examples or merge them into another label."
        )
