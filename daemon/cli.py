"""The `alertd` command line."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

from daemon import __version__

if TYPE_CHECKING:
    from daemon.config import Config
    from daemon.promql.ast import Expr


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not hasattr(args, "command"):
        _parser().print_help()
        return 2
    return int(args.command(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alertd", description="Scrape, evaluate alerting rules, notify.")
    parser.add_argument("--version", action="version", version=f"alertd {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("--config", metavar="FILE", help="config file (default: the embedded demo config)")
    run.add_argument("--listen", metavar="HOST:PORT", help="HTTP listen address (default: web.listen, 0.0.0.0:9095)")
    run.add_argument("--data-dir", metavar="DIR", default="data", help="where state is kept (default: ./data)")
    run.add_argument("--log-format", choices=("json", "console"), help="default: console on a terminal, else json")
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    run.set_defaults(command=_run)

    query = commands.add_parser("query", help="scrape the configured targets once and evaluate a PromQL expression")
    query.add_argument("expr", metavar="EXPR", help="PromQL expression")
    query.add_argument("--config", metavar="FILE", help="config file (default: the embedded demo config)")
    query.set_defaults(command=_query)

    check = commands.add_parser("check", help="validate files without running")
    checks = check.add_subparsers(title="what", metavar="WHAT", required=True)
    check_config = checks.add_parser("config", help="validate a config file and summarise it")
    check_config.add_argument("file", metavar="FILE")
    check_config.set_defaults(command=_check_config)
    check_rules = checks.add_parser("rules", help="validate rule files as promtool check rules does")
    check_rules.add_argument("files", metavar="FILE", nargs="+")
    check_rules.set_defaults(command=_check_rules)

    config = commands.add_parser("config", help="inspect the alerting config")
    config_what = config.add_subparsers(title="what", metavar="WHAT", required=True)
    routes = config_what.add_parser("routes", help="the route tree")
    routes_what = routes.add_subparsers(title="what", metavar="WHAT", required=True)
    routes_test = routes_what.add_parser(
        "test", help="print the receivers an alert with these labels is routed to (as amtool config routes test)"
    )
    routes_test.add_argument(
        "--config", "--config.file", dest="config", metavar="FILE", help="config file (default: the embedded demo config)"
    )
    routes_test.add_argument("--tree", action="store_true", help="print the matching routes tree first")
    routes_test.add_argument(
        "--verify.receivers",
        dest="verify_receivers",
        metavar="R1,R2",
        default="",
        help="exit 1 unless the receivers are exactly these, in this order",
    )
    routes_test.add_argument("labels", metavar="LABEL=VALUE", nargs="*", help="the alert's labels")
    routes_test.set_defaults(command=_config_routes_test)

    from daemon.cli_ack import add_ack_commands

    add_ack_commands(commands)

    test = commands.add_parser("test", help="run unit tests")
    tests = test.add_subparsers(title="what", metavar="WHAT", required=True)
    test_rules = tests.add_parser("rules", help="run rule unit tests (promtool's test file format)")
    test_rules.add_argument("files", metavar="FILE", nargs="+")
    test_rules.set_defaults(command=_test_rules)
    return parser


def _run(args: argparse.Namespace) -> int:
    from daemon import logging
    from daemon.app import App, split_listen

    if args.listen is not None:
        try:
            split_listen(args.listen)
        except ValueError as exc:
            print(f"--listen: {exc}", file=sys.stderr)
            return 1
    config = _load_config(args.config or None)
    if config is None:
        return 1
    logging.configure(args.log_format, args.log_level)
    app = App(config, config_path=args.config, listen=args.listen, data_dir=args.data_dir)
    return _run_loop(app.serve())


def _load_config(path: str | None, issues_to: TextIO | None = None) -> Config | None:
    """The config at ``path`` (the embedded demo config without one), or ``None`` once every issue is printed.

    Issues go to stderr unless ``issues_to`` says otherwise: ``check config`` reports them as its output.
    """
    from daemon.config import ConfigError, load_config, load_default_config

    try:
        return load_default_config() if path is None else load_config(path)
    except ConfigError as exc:
        for issue in exc.issues:
            print(issue, file=issues_to or sys.stderr)
        return None


def _run_loop(main: object) -> int:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)  # type: ignore[arg-type]
    return uvloop.run(main)  # type: ignore[arg-type,no-any-return]


def _check_config(args: argparse.Namespace) -> int:
    from daemon.config import summarize

    config = _load_config(args.file, sys.stdout)
    if config is None:
        return 1
    print(summarize(config))
    return 0


def _config_routes_test(args: argparse.Namespace) -> int:
    from daemon.dispatch.matchers import MatcherError, MatchType, parse_matcher
    from daemon.dispatch.route import Route, matching_tree

    config = _load_config(args.config or None)
    if config is None:
        return 1
    if config.route is None:
        print("alertd: error: no route provided in config", file=sys.stderr)
        return 1
    labels: dict[str, str] = {}
    for text in args.labels:
        try:
            matcher = parse_matcher(text)
        except MatcherError as exc:
            print(f"alertd: error: Failed to parse labels: {exc}", file=sys.stderr)
            return 1
        if matcher.type is not MatchType.EQUAL:
            print("alertd: error: Failed to parse labels: labels must be specified as key=value pairs", file=sys.stderr)
            return 1
        labels[matcher.name] = matcher.value
    root = Route.build(config.route)
    if args.tree:
        # amtool ends the tree with two blank lines.
        sys.stdout.write("Matching routes:\n" + matching_tree(root, labels) + "\n\n")
    receivers = ",".join(route.receiver for route in root.match(labels))
    print(receivers)
    if args.verify_receivers and args.verify_receivers != receivers:
        print("WARNING: Expected receivers did not match resolved receivers.")
        return 1
    return 0


def _check_rules(args: argparse.Namespace) -> int:
    from daemon.rules.spec import check_rule_files

    return check_rule_files(args.files, sys.stdout, sys.stderr)


def _test_rules(args: argparse.Namespace) -> int:
    from daemon import logging
    from daemon.rules.unittest import run_test_files

    # The report already names every rule that failed to evaluate, as promtool's does.
    logging.configure("console", "error", stream=sys.stderr)
    return run_test_files(args.files, sys.stdout, sys.stderr)


def _query(args: argparse.Namespace) -> int:
    from daemon.promql.parser import ParseError, parse_expr

    config = _load_config(args.config or None)
    if config is None:
        return 1
    try:
        expr = parse_expr(args.expr)
    except ParseError as exc:
        print(f"query error: {exc}", file=sys.stderr)
        return 1
    return _run_loop(_query_once(config, expr))


async def _query_once(config: Config, expr: Expr) -> int:
    from daemon.promql.printer import format_number
    from daemon.clock import SystemClock
    from daemon.promql.engine import Engine
    from daemon.promql.errors import QueryError
    from daemon.promql.value import Scalar, SeriesPoints, String
    from daemon.scrape.manager import scrape_once
    from daemon.tsdb import Store

    clock, store = SystemClock(), Store()
    for loop in await scrape_once(config.scrape_configs, store, clock):
        if loop.health.last_error:
            print(f"warning: {loop.target.url}: {loop.health.last_error}", file=sys.stderr)
    t = clock.time()
    try:
        result = Engine(store).instant(expr, t)
    except QueryError as exc:
        print(f"query error: {exc}", file=sys.stderr)
        return 1
    # The shapes promtool prints: `labels => value @[time]`.
    if isinstance(result, Scalar):
        print(f"{format_number(result.value)} @[{t:.3f}]")
    elif isinstance(result, String):
        print(f"{result.value} @[{t:.3f}]")
    else:
        for item in result:
            if isinstance(item, SeriesPoints):
                points = "\n".join(f"{format_number(v)} @[{ms / 1000:.3f}]" for ms, v in item.points)
                print(f"{item.labels} =>\n{points}")
            else:
                print(f"{item.labels} => {format_number(item.value)} @[{t:.3f}]")
    return 0

