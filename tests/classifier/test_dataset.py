"""Training data and taxonomy loading (classifier.training.dataset)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from classifier.training.dataset import (
    DATA_DIR,
    DEFAULT_TAXONOMY,
    Dataset,
    check_trainable,
    load_dataset,
    load_taxonomy,
)
from feedback.errors import InvalidInputError

CATEGORIES = {"billing", "technical issue", "cancellation", "account", "general question"}


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


def test_good_file(tmp_path: Path) -> None:
    raw = "text,category\nMy card is blocked,account\nWhere is my refund?,billing\n"
    path = write(tmp_path / "good.csv", raw)
    data = load_dataset(path)
    assert data.texts == ["My card is blocked", "Where is my refund?"]
    assert data.labels == ["account", "billing"]
    assert data.skipped_rows == 0
    assert data.sha256 == hashlib.sha256(raw.encode()).hexdigest()
    assert data.source == str(path)
    assert data.label_counts == {"account": 1, "billing": 1}
    assert data.fingerprint() == {"source": str(path), "sha256": data.sha256, "rows": 2,
                                  "skipped_rows": 0,
                                  "label_counts": {"account": 1, "billing": 1}}


def test_custom_column_names_and_extra_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "custom.csv",
                 "id,message,intent,agent\n1,  Close my account  ,cancel ,bob\n"
                 "2,Card declined,tech,alice\n")
    data = load_dataset(path, text_column="message", label_column="intent")
    assert data.texts == ["Close my account", "Card declined"]
    assert data.labels == ["cancel", "tech"]


def test_windows_line_endings(tmp_path: Path) -> None:
    path = write(tmp_path / "crlf.csv", "text,category\r\nhello there,a\r\nbye now,b\r\n")
    assert load_dataset(path).texts == ["hello there", "bye now"]


def test_utf8_with_bom(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" starts with a BOM; the first column name must still match."""
    path = write(tmp_path / "bom.csv",
                 b"\xef\xbb\xbftext,category\nCa marche pas \xc3\xa0 l'ATM,technical issue\n")
    data = load_dataset(path)
    assert data.texts == ["Ca marche pas à l'ATM"]
    assert data.labels == ["technical issue"]


def test_quoted_fields_with_commas_quotes_and_line_breaks(tmp_path: Path) -> None:
    path = write(tmp_path / "quoted.csv",
                 'text,category\n"Hello,\nmy card ""Gold"" is blocked.\nThanks",account\n'
                 '"refund, please",billing\n')
    data = load_dataset(path)
    assert data.labels == ["account", "billing"]
    assert data.texts == ['Hello,\nmy card "Gold" is blocked.\nThanks', "refund, please"]


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_unicode_line_separators_inside_a_field_stay_in_the_text(
        tmp_path: Path, separator: str) -> None:
    """Only CR/LF end a CSV record; other line separators pasted into a message are text."""
    path = write(tmp_path / "seps.csv",
                 f"text,category\nfirst{separator}second,billing\nplain,account\n")
    data = load_dataset(path)
    assert data.labels == ["billing", "account"]
    assert data.texts == [f"first{separator}second", "plain"]
    assert data.skipped_rows == 0


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"Data file .*nope\.csv does not exist"):
        load_dataset(tmp_path / "nope.csv")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="is a folder, not a CSV file"):
        load_dataset(tmp_path)


def test_latin1_file(tmp_path: Path) -> None:
    path = write(tmp_path / "latin1.csv",
                 "text,category\nMa carte est bloquée,account\n".encode("latin-1"))
    with pytest.raises(InvalidInputError, match=r"is not UTF-8 \(byte 32\); re-save it as UTF-8"):
        load_dataset(path)


def test_nul_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "nul.csv", b"text,category\nhello\x00world,billing\n")
    with pytest.raises(InvalidInputError, match="contains NUL bytes"):
        load_dataset(path)


def test_utf16_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "utf16.csv", "text,category\nhello,billing\n".encode("utf-16"))
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        load_dataset(path)


@pytest.mark.parametrize(("kwargs", "missing"), [
    ({}, "'category'"),
    ({"text_column": "message"}, "'message'"),
    ({"label_column": "intent"}, "'intent'"),
])
def test_missing_column_lists_the_columns(tmp_path: Path, kwargs: dict[str, str],
                                          missing: str) -> None:
    path = write(tmp_path / "cols.csv", "text,label,agent\nhello,billing,bob\n")
    with pytest.raises(InvalidInputError,
                       match=rf"has no column {missing}; its columns are 'text', 'label', "
                             r"'agent'\. Choose with --text-column / --label-column"):
        load_dataset(path, **kwargs)


def test_empty_file_has_no_columns(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.csv", "")
    with pytest.raises(InvalidInputError, match="has no column 'text'; its columns are none"):
        load_dataset(path)


def test_rows_with_empty_text_or_label_are_skipped_and_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "gaps.csv",
                 "text,category\nok one,billing\n,billing\n   ,account\nno label,\n"
                 "spaces label,   \nok two,account\nshort row\n")
    data = load_dataset(path)
    assert data.texts == ["ok one", "ok two"]
    assert data.labels == ["billing", "account"]
    assert data.skipped_rows == 5
    assert data.fingerprint()["skipped_rows"] == 5


@pytest.mark.parametrize("content", ["text,category\n", "text,category\n,\n  ,  \nx,\n,y\n"])
def test_no_usable_rows(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "none.csv", content)
    with pytest.raises(InvalidInputError, match="has no row with both a text and a label"):
        load_dataset(path)


def _dataset(labels: list[str]) -> Dataset:
    return Dataset([f"message {i}" for i in range(len(labels))], labels, "mem.csv", "0", 0)


def test_check_trainable_needs_two_labels() -> None:
    with pytest.raises(InvalidInputError,
                       match=r"mem\.csv has 1 distinct label\(s\) in 5 usable rows; a classifier "
                             r"needs at least 2"):
        check_trainable(_dataset(["billing"] * 5))


def test_check_trainable_refuses_a_label_with_one_row() -> None:
    with pytest.raises(InvalidInputError,
                       match=r"label\(s\) 'cancellation' have fewer than 2 rows"):
        check_trainable(_dataset(["billing"] * 5 + ["account"] * 3 + ["cancellation"]))


def test_check_trainable_accepts_two_rows_per_label() -> None:
    check_trainable(_dataset(["billing", "billing", "account", "account"]))


# --- taxonomy ---------------------------------------------------------------------------


def test_shipped_taxonomy_maps_the_77_intents_onto_five_categories() -> None:
    intents = json.loads((DATA_DIR / "categories.json").read_text(encoding="utf-8"))
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY)
    assert len(intents) == 77 == len(set(intents))
    assert set(taxonomy.mapping) == set(intents)  # byte-exact names
    assert "Refund_not_showing_up" in taxonomy.mapping
    assert "reverted_card_payment?" in taxonomy.mapping
    assert set(taxonomy.categories) == CATEGORIES
    assert set(taxonomy.mapping.values()) == CATEGORIES
    assert all(taxonomy.categories[c].strip() for c in CATEGORIES)  # each one defined
    assert taxonomy.name == "support-5"


def test_shipped_taxonomy_covers_every_label_of_the_shipped_data() -> None:
    taxonomy = load_taxonomy(DEFAULT_TAXONOMY)
    for name in ("train.csv", "test.csv"):
        data = taxonomy.apply(load_dataset(DATA_DIR / name))
        assert set(data.labels) == CATEGORIES


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"name": "x"}',
                                     '{"mapping": ["a", "b"]}', ""])
def test_malformed_taxonomy(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "tax.json", content)
    with pytest.raises(InvalidInputError, match=r"Taxonomy file .*tax\.json (is not valid|needs)"):
        load_taxonomy(path)


def test_missing_taxonomy(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="does not exist"):
        load_taxonomy(tmp_path / "missing.json")


def test_taxonomy_mapping_onto_an_undefined_category(tmp_path: Path) -> None:
    path = write(tmp_path / "tax.json", json.dumps({
        "categories": {"billing": "money"},
        "mapping": {"refund": "billing", "lost_card": "acount", "fee": "biling"},
    }))
    with pytest.raises(InvalidInputError, match="maps onto undefined categories: acount, biling"):
        load_taxonomy(path)


def test_taxonomy_without_categories_uses_the_mapped_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "mini.json", json.dumps({"mapping": {"a": "x", "b": "y"}}))
    taxonomy = load_taxonomy(path)
    assert taxonomy.name == "mini"
    assert set(taxonomy.categories) == {"x", "y"}


def test_apply_maps_labels_and_keeps_the_fingerprint(tmp_path: Path) -> None:
    path = write(tmp_path / "tax.json", json.dumps({"mapping": {"a": "x", "b": "y"}}))
    data = Dataset(["one", "two", "three"], ["a", "b", "a"], "src.csv", "abc", 2)
    mapped = load_taxonomy(path).apply(data)
    assert mapped.labels == ["x", "y", "x"]
    assert mapped.texts == data.texts
    assert (mapped.source, mapped.sha256, mapped.skipped_rows) == ("src.csv", "abc", 2)


def test_apply_names_the_unmapped_labels(tmp_path: Path) -> None:
    path = write(tmp_path / "tax.json", json.dumps({"name": "t", "mapping": {"a": "x"}}))
    data = Dataset(["1", "2", "3"], ["a", "card_arrival", "reverted_card_payment?"],
                   "src.csv", "abc", 0)
    with pytest.raises(InvalidInputError,
                       match=r"Taxonomy 't' has no category for 2 label\(s\) of src\.csv: "
                             r"'card_arrival', 'reverted_card_payment\?'"):
        load_taxonomy(path).apply(data)
