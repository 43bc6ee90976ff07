"""PII redaction: time per message and corpus coverage, new vs previous vs libraries.

Times one call per message (median, p99 and mean in microseconds) on

* the Banking77 test texts (classifier/data/test.csv, column `text`): ordinary support
  messages, most of them without any PII;
* the corpus sentences: every PII value of tests/data/pii_corpus.json embedded in a few
  sentence templates, plus the corpus near-misses;

for, side by side in one run:

* new        feedback.redact.redact, the working-tree version;
* previous   feedback/redact.py at git revision --baseline-rev (default HEAD), read with
             `git show REV:feedback/redact.py` and executed into a fresh module;
* +stdnum    the new redactor with its IBAN and Luhn checks replaced by python-stdnum's
             `iban.is_valid` and `luhn.is_valid` (when stdnum is importable);
* phonenumbers  `PhoneNumberMatcher(text, "GB", leniency=Leniency.POSSIBLE)`, phones only
             (when phonenumbers is importable), each match replaced by [PHONE]; and the same
             with Leniency.VALID, the strictest setting that still finds formatted numbers.

Coverage counts, per kind, the corpus values that leave nothing behind in every sentence
(tests/pii_support.leaks finds no piece of them), and the near-misses left unchanged (for
phonenumbers: not flagged). Optional libraries: `pip install -r benchmarks/requirements-bench.txt`.

    python benchmarks/bench_redact.py                  # 5 rounds over both data sets
    python benchmarks/bench_redact.py --rounds 1       # quick run
    python benchmarks/bench_redact.py --baseline-rev HEAD~3

The last line printed is one JSON object with every number, for scripts.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import types
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from classifier.training.dataset import DEFAULT_TEST  # noqa: E402
from tests.pii_support import leaks, load_corpus  # noqa: E402

REDACT_PATH = "feedback/redact.py"
KINDS = ("email", "phone", "card", "iban")
# How the corpus values appear in the timed sentences (the tests use more templates).
TEMPLATES = ("{}", "Hi, please use {} for the refund.", "please reply ({}) today",
             "write to: {}", "Is this right? {}. Regards")
PHONE_REGION = "GB"  # the app's users: a UK bank; numbers without +CC are read as British
US_PER_NS = 1e-3

Redactor = Callable[[str], str]


def load_module(name: str, source: str, filename: str) -> types.ModuleType:
    """Execute `source` as a fresh module (not registered in sys.modules)."""
    module = types.ModuleType(name)
    module.__file__ = filename
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - our own file
    return module


def baseline_redactor(rev: str) -> types.ModuleType:
    source = subprocess.run(["git", "show", f"{rev}:{REDACT_PATH}"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    return load_module("redact_baseline", source, f"{rev}:{REDACT_PATH}")


def stdnum_redactor() -> types.ModuleType | None:
    """A second copy of the new redactor whose checks are python-stdnum's."""
    try:
        from stdnum import iban, luhn
    except ImportError:
        return None
    spec = importlib.util.spec_from_file_location("redact_stdnum", ROOT / REDACT_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module._compact_iban_valid = iban.is_valid
    module._luhn = luhn.is_valid
    return module


def phonenumbers_redactors() -> dict[str, Redactor]:
    """Replace what PhoneNumberMatcher finds with [PHONE], as a redactor would."""
    try:
        from phonenumbers import Leniency, PhoneNumberMatcher
    except ImportError:
        return {}

    def redactor(leniency: int) -> Redactor:
        def redact(text: str) -> str:
            parts, pos = [], 0
            for match in PhoneNumberMatcher(text, PHONE_REGION, leniency=leniency):
                parts += [text[pos:match.start], "[PHONE]"]
                pos = match.end
            parts.append(text[pos:])
            return "".join(parts)

        return redact

    return {f"phonenumbers {name} ({PHONE_REGION})": redactor(leniency)
            for name, leniency in (("POSSIBLE", Leniency.POSSIBLE), ("VALID", Leniency.VALID))}


def time_per_call(calls: Mapping[str, Callable[[str], object]], texts: list[str],
                  rounds: int) -> dict[str, dict[str, float]]:
    """Microseconds per call of each function, after one untimed warm-up pass each. The
    rounds alternate between the functions so that drifting load on a shared machine hits
    them alike."""
    samples: dict[str, list[int]] = {name: [] for name in calls}
    clock = time.perf_counter_ns
    for call in calls.values():
        for text in texts:
            call(text)
    for _ in range(rounds):
        for name, call in calls.items():
            timed = samples[name]
            for text in texts:
                start = clock()
                call(text)
                timed.append(clock() - start)
    stats = {}
    for name, timed in samples.items():
        timed.sort()
        stats[name] = {
            "n": len(timed),
            "median_us": round(statistics.median(timed) * US_PER_NS, 2),
            "p99_us": round(timed[int(len(timed) * 0.99)] * US_PER_NS, 2),
            "mean_us": round(statistics.fmean(timed) * US_PER_NS, 2),
        }
    return stats


def removed(redact: Redactor, entry: dict[str, str], template: str) -> bool:
    """Neither the value nor any piece of it (tests/pii_support.leaks) is left."""
    out = redact(template.format(entry["value"]))
    return entry["value"] not in out and not leaks(entry["value"], entry["kind"], out)


def coverage(redact: Redactor, kinds: tuple[str, ...], pii: list[dict[str, str]],
             near_misses: list[str]) -> dict[str, int | None]:
    """Per kind the redactor handles, the corpus values removed from every template sentence
    (None for other kinds); and the near-misses left unchanged."""
    result: dict[str, int | None] = {kind: None for kind in KINDS}
    for kind in kinds:
        result[kind] = sum(all(removed(redact, e, t) for t in TEMPLATES)
                           for e in pii if e["kind"] == kind)
    result["near_misses_kept"] = sum(redact(text) == text for text in near_misses)
    return result


def validator_checks(pii: list[dict[str, str]], rounds: int) -> dict[str, Any]:
    """Our IBAN / Luhn checks against stdnum's on the corpus values: accepted, time per call."""
    from feedback.redact import iban_valid, luhn_valid

    ibans = [e["value"] for e in pii if e["kind"] == "iban" and "redacted" not in e]
    # ASCII digits, as the redactor's shadow hands them over (stdnum reads ASCII only).
    cards = ["".join(str(unicodedata.decimal(ch)) for ch in e["value"] if ch.isdecimal())
             for e in pii if e["kind"] == "card"]
    checks: dict[str, tuple[Callable[[str], bool], list[str]]] = {
        "iban_valid": (iban_valid, ibans), "luhn_valid": (luhn_valid, cards)}
    try:
        from stdnum import iban, luhn
    except ImportError:
        pass
    else:
        checks["stdnum iban.is_valid"] = (iban.is_valid, ibans)
        checks["stdnum iban.is_valid(check_country=False)"] = (
            lambda v: iban.is_valid(v, check_country=False), ibans)
        checks["stdnum luhn.is_valid"] = (luhn.is_valid, cards)
    out = {}
    for name, (check, values) in checks.items():
        accepted = sum(bool(check(v)) for v in values)
        out[name] = {"accepted": accepted, "of": len(values),
                     **time_per_call({name: check}, values, rounds)[name]}
    return out


def versions() -> dict[str, str]:
    found = {}
    for dist in ("phonenumbers", "python-stdnum"):
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = ""
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-rev", default="HEAD",
                        help="git revision of the previous feedback/redact.py (default HEAD)")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over each data set")
    args = parser.parse_args()

    from feedback import redact as new

    corpus = load_corpus()
    pii = corpus["pii"]
    near_misses = [entry["text"] for entry in corpus["near_misses"]]
    with DEFAULT_TEST.open(encoding="utf-8") as f:
        banking = [row["text"] for row in csv.DictReader(f)]
    sentences = [t.format(e["value"]) for e in pii for t in TEMPLATES] + near_misses

    redactors: dict[str, Redactor] = {
        "new": new.redact,
        f"previous ({args.baseline_rev})": baseline_redactor(args.baseline_rev).redact,
    }
    if (with_stdnum := stdnum_redactor()) is not None:
        redactors["new + stdnum checks"] = with_stdnum.redact
    handles = dict.fromkeys(redactors, KINDS)
    for name, redact in phonenumbers_redactors().items():
        redactors[name], handles[name] = redact, ("phone",)

    fast = sum(not new._TRIGGER.search(text) for text in banking)
    print(f"Banking77 test texts: {len(banking)} ({fast} take the fast path: no digit, no "
          f"at sign); corpus: {len(pii)} PII values x {len(TEMPLATES)} templates + "
          f"{len(near_misses)} near-misses = {len(sentences)} sentences; "
          f"{args.rounds} timed rounds each")
    print()
    timings: dict[str, dict[str, dict[str, float]]] = {}
    header = f"{'data set':<18} {'redactor':<30} {'n':>7} {'median µs':>10} {'p99 µs':>9} " \
             f"{'mean µs':>9}"
    print(header)
    print("-" * len(header))
    for label, texts in (("banking77", banking), ("corpus sentences", sentences)):
        timings[label] = time_per_call(redactors, texts, args.rounds)
        for name, s in timings[label].items():
            print(f"{label:<18} {name:<30} {s['n']:>7} {s['median_us']:>10.2f} "
                  f"{s['p99_us']:>9.2f} {s['mean_us']:>9.2f}")

    kinds = Counter(e["kind"] for e in pii)
    print()
    print("corpus coverage: values with no piece left in any template sentence (- : not a "
          "kind it looks for); near-misses unchanged")
    header = f"{'redactor':<30} " + " ".join(f"{k:>7}" for k in KINDS) + f" {'near-miss':>10}"
    print(header)
    print("-" * len(header))
    print(f"{'(corpus size)':<30} " + " ".join(f"{kinds[k]:>7}" for k in KINDS)
          + f" {len(near_misses):>10}")
    covered = {}
    for name, redact in redactors.items():
        c = coverage(redact, handles[name], pii, near_misses)
        covered[name] = c
        print(f"{name:<30} " + " ".join(f"{'-' if c[k] is None else c[k]:>7}" for k in KINDS)
              + f" {c['near_misses_kept']:>10}")

    checks = validator_checks(pii, args.rounds)
    print()
    print("validators on the corpus values (card digits compact and ASCII; IBANs as written, "
          "without a label)")
    header = f"{'check':<44} {'accepted':>9} {'median µs':>10} {'p99 µs':>9}"
    print(header)
    print("-" * len(header))
    for name, s in checks.items():
        print(f"{name:<44} {s['accepted']:>4}/{s['of']:<4} {s['median_us']:>10.2f} "
              f"{s['p99_us']:>9.2f}")

    print(json.dumps({
        "benchmark": "redact", "baseline_rev": args.baseline_rev, "rounds": args.rounds,
        "banking77_texts": len(banking), "banking77_fast_path": fast,
        "corpus_sentences": len(sentences), "corpus_sizes": {k: kinds[k] for k in KINDS},
        "near_misses": len(near_misses), "timings": timings, "coverage": covered,
        "validators": checks, "versions": versions(), "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
