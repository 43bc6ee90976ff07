"""Time windows and the fixed bins that latency and confidence are counted in."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import case

from dashboards.sqlfuncs import floor_int

# Upper edges of the latency bins in milliseconds: fine where requests normally land
# (a few ms), coarse for the slow tail. The last bin is open-ended.
LATENCY_EDGES_MS = (0.5, 1, 1.5, 2, 3, 4, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 250, 500,
                    1000, 2500, 5000, 10000)
LATENCY_BINS = len(LATENCY_EDGES_MS) + 1
CONFIDENCE_BINS = 20


@dataclass(frozen=True)
class Window:
    """A time range and the width of its chart buckets."""

    start: datetime
    end: datetime
    bucket_seconds: int


# (label, length, bucket width): about 60-170 points per chart.
WINDOWS: dict[str, tuple[timedelta, int]] = {
    "Last hour": (timedelta(hours=1), 60),
    "Last 24 hours": (timedelta(hours=24), 15 * 60),
    "Last 7 days": (timedelta(days=7), 3600),
    "Last 30 days": (timedelta(days=30), 6 * 3600),
}


def make_window(name: str, now: datetime | None = None) -> Window:
    """The named window ending now; raises KeyError for an unknown name."""
    length, bucket = WINDOWS[name]
    end = now or datetime.now(UTC)
    return Window(start=end - length, end=end, bucket_seconds=bucket)


def as_time(epoch: int) -> datetime:
    return datetime.fromtimestamp(int(epoch), UTC)


def latency_bin_expr(column: Any) -> Any:
    """SQL: index of the latency bin of each row (LATENCY_BINS - 1 for the open tail)."""
    whens = [(column < edge, i) for i, edge in enumerate(LATENCY_EDGES_MS)]
    return case(*whens, else_=len(LATENCY_EDGES_MS))


def confidence_bin_expr(column: Any) -> Any:
    """SQL: index 0..CONFIDENCE_BINS-1 of each row's confidence (1.0 in the last bin)."""
    raw = floor_int(column * CONFIDENCE_BINS)
    return case((raw >= CONFIDENCE_BINS, CONFIDENCE_BINS - 1), else_=raw)


# Shapes of the aggregates: (bucket start, key, count) and (bin, count).
TimeRows = list[tuple[datetime, str, int]]
BinRows = list[tuple[datetime, int, int]]
HistogramRows = list[tuple[int, int]]


@dataclass
class VersionTotals:
    """Per-version totals of a window: requests by status, confidence sum, latency bins."""

    status_counts: dict[str, int]
    sum_confidence: float
    latency_bins: dict[int, int]

    def add(self, other: VersionTotals) -> None:
        for key, n in other.status_counts.items():
            self.status_counts[key] = self.status_counts.get(key, 0) + n
        self.sum_confidence += other.sum_confidence
        for bin_index, n in other.latency_bins.items():
            self.latency_bins[bin_index] = self.latency_bins.get(bin_index, 0) + n
