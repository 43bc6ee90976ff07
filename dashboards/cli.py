"""`python -m dashboards check`: evaluate the alert rules once, for cron.

Exit status 0 when no alert is open afterwards, 1 when one is (so cron mails it), 2 when the
check itself could not run.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

import httpx

from dashboards.alerts import evaluate_alerts, list_open_alerts
from dashboards.notify import post_json
from feedback.errors import SupportTriageError
from feedback.settings import load_settings

HEALTH_TIMEOUT_S = 5.0


def _health_probe(url: str) -> Callable[[], tuple[bool, str]]:
    def probe() -> tuple[bool, str]:
        try:
            response = httpx.get(f"{url.rstrip('/')}/api/v1/health", timeout=HEALTH_TIMEOUT_S)
        except httpx.HTTPError as exc:
            return False, f"{url} is not reachable ({type(exc).__name__})"
        if response.status_code != 200:
            return False, f"{url} health answered {response.status_code}"
        return True, f"{url} is up"
    return probe


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards",
                                     description="Monitoring checks for Support Triage.")
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="evaluate the alert rules once")
    check.add_argument("--url", help="also check that the app at this URL is up")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        changes = evaluate_alerts(settings, probe=_health_probe(args.url) if args.url else None,
                                  notify=post_json)
        open_alerts = list_open_alerts(settings)
    except (SupportTriageError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for change in changes:
        print(f"{change.change}: {change.rule}: {change.alert.message}")
    for alert in open_alerts:
        print(f"OPEN {alert.rule} since {alert.opened_at:%Y-%m-%d %H:%M} UTC: {alert.message}\n"
              f"  check first: {alert.advice}")
    if not open_alerts:
        print("No open alerts.")
    return 1 if open_alerts else 0
