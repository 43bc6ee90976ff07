"""How long the Monitoring tab takes to open in a real browser on a large prediction log.

Setup (timed and printed, not part of the results): a data folder with a real trained model
(TF-IDF by default, through the app's first-start path `ensure_live_model`), `--rows`
prediction rows and their ratings over the last 30 days made by bench_monitoring.py's
generators for the live version, folded into the rollups (`dashboards.rollups.catch_up`),
and a reviewer account. Then `python app.py` on a free port, and Debian's Chromium driven
by Playwright (never `playwright install`).

Each run is a fresh browser context (empty cache, as a reviewer's first visit of the day):
sign in through the form, wait until the page is ready (the "Signed in as" line filled) and
`--idle` seconds more (a person finding the tab), then click Monitoring. In the page, on
every animation frame, it records the milliseconds since the click until:

* first    something of the tab's content is on screen (the summary or a chart);
* charts   every chart of dashboards.monitoring.FIGURE_NAMES is drawn (Plotly's SVG with its
           axes in each) and the summary is filled: what the acceptance point is about;
* panels   the drift panel above the charts is filled as well (everything loaded);
* plotly   when the browser had Plotly's JavaScript chunk (its resource entry's end,
           relative to the click; negative when fetched before the click), and whether it
           had also run by the click (`window.Plotly` set).

Usage (from the repository root):

    python benchmarks/bench_monitoring_browser.py                    # 1,000,000 rows
    python benchmarks/bench_monitoring_browser.py --rows 20000       # quick run
    python benchmarks/bench_monitoring_browser.py --data-dir /tmp/mon1m   # keep the data
    python benchmarks/bench_monitoring_browser.py --runs 9 --idle 0

With `--data-dir`, a folder that already holds the rows is reused as is (the 30 days move
with the clock, so the newest hours thin out on a later day). The last line printed is one
JSON object with every number.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.apphost import SETTINGS_ENV, running_app  # noqa: E402
from benchmarks.bench_monitoring import fill, stored_rows  # noqa: E402
from classifier.versions import registry  # noqa: E402
from dashboards import rollups  # noqa: E402
from dashboards.health import load_health  # noqa: E402
from dashboards.monitoring import FIGURE_NAMES, load_monitoring  # noqa: E402
from dashboards.queries import make_window  # noqa: E402
from feedback.db import dispose_engines, session_scope  # noqa: E402
from feedback.settings import Settings, load_settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
VIEWPORT = {"width": 1366, "height": 900}
REVIEWER, PASSWORD = "bench-reviewer", "bench-reviewer-password"
DEFAULT_WINDOW = "Last 24 hours"  # the tab's default

# Runs in the page: click the Monitoring tab, then check on every frame what is drawn.
PROBE_JS = """async ({names, timeout}) => {
  const tab = [...document.querySelectorAll("button[role=tab]")]
    .find(b => b.textContent.trim().startsWith("Monitoring"));
  if (!tab) return {error: "no Monitoring tab"};
  const drawn = () => names.filter(n => {
    const gd = document.querySelector(`#plot-${n} .js-plotly-plot`);
    return gd && gd._fullLayout && gd.querySelector(".main-svg .cartesianlayer .xtick");
  }).length;
  // The markdown itself: the block around it also holds Gradio's "processing | 0.3s".
  const text = id => (document.querySelector(`#${id} [data-testid=markdown]`)?.textContent
                      || "").trim();
  const marks = {plotly_ready: !!window.Plotly};  // Plotly's chunk already run at the click
  const t0 = performance.now();
  tab.click();
  return await new Promise(resolve => {
    const check = () => {
      const now = performance.now() - t0;
      const summary = text("monitoring-summary"), drift = text("drift"), n = drawn();
      if (marks.first === undefined && (summary || n > 0)) marks.first = now;
      if (marks.charts === undefined && summary && n === names.length) marks.charts = now;
      if (marks.panels === undefined && drift) marks.panels = now;
      if ((marks.charts !== undefined && marks.panels !== undefined) || now > timeout) {
        const plotly = performance.getEntriesByType("resource")
          .filter(e => e.name.includes("/PlotlyPlot-"));
        marks.plotly = plotly.length ? plotly[0].responseEnd - t0 : null;
        marks.drawn = n;
        marks.timed_out = now > timeout;
        resolve(marks);
        return;
      }
      requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  });
}"""


def prepare(data_dir: Path, rows: int, model: str, seed: int) -> dict[str, Any]:
    """A live model, `rows` predictions and their ratings, rollups folded, an account."""
    from classifier.training.default_model import ensure_live_model

    settings = dataclasses.replace(load_settings(), data_dir=data_dir, database_url="")
    setup: dict[str, Any] = {}
    start = time.perf_counter()
    trained = ensure_live_model(settings, progress=lambda _m: None, model=model)
    setup["train_s"] = round(time.perf_counter() - start, 1)
    with session_scope(settings) as session:
        live = registry.live_version(session=session)
    assert live is not None
    kept = stored_rows(settings)
    if kept:
        print(f"{data_dir}: {kept:,} predictions already there (model v{live})")
        setup["rows"] = kept
    else:
        how = f"trained in {setup['train_s']:.1f}s" if trained else "already live"
        print(f"{data_dir}: model '{model}' v{live} {how}")
        setup.update(fill(settings, rows, 0.05, seed, versions=(live, live)))
        print(f"inserted {setup['rows']:,} predictions and {setup['feedback']:,} ratings in "
              f"{setup['insert_s']:.1f}s -- setup")
    start = time.perf_counter()
    folded = rollups.catch_up(settings)
    setup["fold_s"] = round(time.perf_counter() - start, 1)
    print(f"folded {folded:,} rows into the rollups in {setup['fold_s']:.1f}s -- setup")
    setup["server_ms"] = server_side(settings)
    dispose_engines()
    add_reviewer(data_dir)
    return setup


def server_side(settings: Settings, runs: int = 3) -> dict[str, float]:
    """In-process medians of the tab's two loads for the default window, for reference."""
    charts, panels = [], []
    for _ in range(runs):
        start = time.perf_counter()
        load_monitoring(settings, DEFAULT_WINDOW)
        charts.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        load_health(settings, make_window(DEFAULT_WINDOW))
        panels.append((time.perf_counter() - start) * 1000)
    return {"load_monitoring": round(statistics.median(charts), 1),
            "load_health": round(statistics.median(panels), 1)}


def add_reviewer(data_dir: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_ENV}
    env.update({"DATA_DIR": str(data_dir)})
    done = subprocess.run([sys.executable, "-m", "classifier", "users", "add", REVIEWER,
                           "--role", "reviewer", "--password-stdin"], cwd=ROOT,
                          input=PASSWORD + "\n", env=env, capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0 and "exists" not in (done.stderr + done.stdout):
        raise RuntimeError(done.stderr or done.stdout)


def open_once(browser: Any, url: str, idle: float, timeout_ms: float) -> dict[str, Any]:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/sign-in", wait_until="domcontentloaded")
        page.fill("#username", REVIEWER)
        page.fill("#password", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")
        page.locator("#signed-in").get_by_text("Signed in as").wait_for()
        page.wait_for_timeout(idle * 1000)
        marks = page.evaluate(PROBE_JS, {"names": list(FIGURE_NAMES), "timeout": timeout_ms})
        if marks.get("error") or marks.get("timed_out"):
            raise RuntimeError(f"the tab did not finish drawing: {marks}")
        return {k: round(v, 1) if isinstance(v, float) else v for k, v in marks.items()}
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="prediction rows")
    parser.add_argument("--runs", type=int, default=7, help="fresh page loads (median)")
    parser.add_argument("--idle", type=float, default=2.0,
                        help="seconds between the page being ready and the click (2)")
    parser.add_argument("--model", default="tfidf", help="model trained for the data folder")
    parser.add_argument("--data-dir", type=Path,
                        help="keep the data here (reused when it holds rows already)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per open")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-monitoring-browser-") as tmp:
        data_dir = args.data_dir or Path(tmp) / "data"
        setup = prepare(data_dir, args.rows, args.model, args.seed)
        print(f"server side, in-process, {DEFAULT_WINDOW}: load_monitoring "
              f"{setup['server_ms']['load_monitoring']:.0f} ms, load_health "
              f"{setup['server_ms']['load_health']:.0f} ms (median of 3)")
        runs: list[dict[str, Any]] = []
        with running_app(data_dir, Path(tmp) / "app.log",
                         env_extra={"ALERT_CHECK_SECONDS": "3600"}) as url, \
                sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                open_once(browser, url, args.idle, args.timeout * 1000)  # warm the server
                for i in range(args.runs):
                    runs.append(open_once(browser, url, args.idle, args.timeout * 1000))
                    r = runs[-1]
                    print(f"run {i + 1}: first {r['first']:7.1f} ms  charts {r['charts']:7.1f} ms"
                          f"  panels {r['panels']:7.1f} ms  plotly chunk at "
                          f"{r['plotly'] if r['plotly'] is not None else '-'} ms"
                          f"{' (run before the click)' if r['plotly_ready'] else ''}")
            finally:
                browser.close()
        medians = {k: round(statistics.median(r[k] for r in runs), 1)
                   for k in ("first", "charts", "panels")}
        print(f"\n{setup['rows']:,} rows, {args.runs} fresh page loads, click after "
              f"{args.idle:g}s idle; medians: first content {medians['first']:.0f} ms, "
              f"all {len(FIGURE_NAMES)} charts {medians['charts']:.0f} ms, "
              f"panels {medians['panels']:.0f} ms")
        print(json.dumps({"benchmark": "monitoring_browser", "rows": setup["rows"],
                          "idle_s": args.idle, "setup": setup, "medians_ms": medians,
                          "runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
