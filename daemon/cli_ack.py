"""``alertd ack`` and ``alertd report``: acknowledge alerts and read the incident history of a
running alertd over its HTTP API."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

DEFAULT_URL = "http://127.0.0.1:9095"


def add_ack_commands(commands: Any) -> None:
    """Register the sub-commands on the ``alertd`` parser's sub-parsers."""
    ack = commands.add_parser(
        "ack",
        help="acknowledge the alert groups holding firing alerts that match (stops their escalation)",
        description="Matchers are amtool's: alertname=SiteDown 'instance=~web-.*' severity!=P3.",
    )
    ack.add_argument("--url", default=DEFAULT_URL, help=f"alertd's address (default: {DEFAULT_URL})")
    ack.add_argument("--by", help="who acknowledges (required unless --remove)")
    ack.add_argument("--comment", default="", help="why, or what is being done")
    ack.add_argument("--remove", action="store_true", help="remove the acknowledgement instead (escalation starts again)")
    ack.add_argument("--group-key", help="the aggregation group's key instead of matchers")
    ack.add_argument("matchers", metavar="MATCHER", nargs="*", help="label matchers, such as alertname=SiteDown")
    ack.set_defaults(command=_ack)

    report = commands.add_parser("report", help="incidents per severity (count, MTTA, MTTR), longest, noisiest, uptime per job")
    report.add_argument("--url", default=DEFAULT_URL, help=f"alertd's address (default: {DEFAULT_URL})")
    report.add_argument("--since", default="7d", help="how far back, as a duration (default: 7d)")
    report.add_argument("--json", action="store_true", help="print the JSON of /api/v1/incidents")
    report.set_defaults(command=_report)


def _ack(args: argparse.Namespace) -> int:
    import httpx

    from daemon.dispatch.matchers import MatcherError, parse_matchers

    if not args.matchers and not args.group_key:
        print("alertd ack: give at least one matcher (alertname=SiteDown) or --group-key", file=sys.stderr)
        return 2
    if not args.remove and not (args.by or "").strip():
        print("alertd ack: --by NAME is required", file=sys.stderr)
        return 2
    for text in args.matchers:
        try:
            parse_matchers(text)
        except MatcherError as exc:
            print(f"alertd ack: bad matcher {text!r}: {exc}", file=sys.stderr)
            return 1
    body: dict[str, Any] = {"matchers": list(args.matchers), "by": args.by or "", "comment": args.comment, "via": "cli"}
    if args.group_key:
        body["group_key"] = args.group_key
    url = args.url.rstrip("/") + "/api/v1/acks"
    try:
        with httpx.Client(timeout=10) as http:
            response = http.request("DELETE" if args.remove else "POST", url, json=body)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        print(f"alertd ack: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        print(f"alertd ack: HTTP {response.status_code}: {response.text[:300]}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"alertd ack: {answer.get('error') or response.status_code}", file=sys.stderr)
        return 1
    verb = "no longer acknowledged" if args.remove else "acknowledged"
    for ack in answer.get("data", []):
        names = ", ".join(ack.get("alertnames", [])) or "-"
        print(f"{verb}: {ack['group_key']} ({names}) by {ack['by']}")
    return 0


def _report(args: argparse.Namespace) -> int:
    import httpx

    from daemon.config.duration import parse_duration

    try:
        parse_duration(args.since)
    except ValueError as exc:
        print(f"alertd report: --since: {exc}", file=sys.stderr)
        return 2
    try:
        response = httpx.get(args.url.rstrip("/") + "/api/v1/incidents", params={"since": args.since}, timeout=30)
        answer = response.json()
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        print(f"alertd report: cannot read {args.url}: {exc}", file=sys.stderr)
        return 1
    if not isinstance(answer, dict) or (response.status_code == 200 and not isinstance(answer.get("data"), dict)):
        print(f"alertd report: HTTP {response.status_code}: {response.text[:300]}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"alertd report: {answer.get('error') or response.status_code}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(answer["data"], indent=2, sort_keys=True))
        return 0
    from daemon.notify.history import format_report

    sys.stdout.write(format_report(answer["data"]))
    return 0
