"""An interpreter for Prometheus' PromQL test scripts (``promql/promqltest``), run against alertd's engine.

Scripts are sequences of ``load``, ``clear`` and ``eval`` commands (see ``FORMAT.md`` beside
the scripts). ``parse_script`` turns one file into ``Eval`` cases, each knowing the data loaded
before it; ``run_case`` evaluates one case and raises ``CaseFailure`` saying what differed.
Skips come from ``tests/promql_skips.yml`` (``{file, line | expr, reason}``) plus one automatic
rule: a case whose data or expectation is a native histogram (``{{...}}``) is skipped, and
counted as skipped.

The engine does not produce Prometheus' info/warn annotations, so ``expect info``/``expect
warn`` lines are not checked (``no_info``/``no_warn`` hold trivially); every value, error and
ordering expectation is.

``python -m tests.promqltest`` prints the per-file table of passed, failed and skipped cases.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from daemon.promql.engine import Engine, QueryError
from daemon.promql.parser import ParseError, parse_duration
from daemon.promql.value import Sample, Scalar, SeriesPoints, String
from daemon.tsdb import STALE_NAN, Labels, Store, parse_selector

SKIPS_FILE = Path(__file__).with_name("promql_skips.yml")
EPSILON = 0.000001
_MIN_NORMAL = sys.float_info.min

# Expected points: a float, None for "no point" (``_``), or a histogram placeholder.
HISTOGRAM = object()


def conformance_dir() -> Path:
    """Where the scripts are: ``$ALERTD_CONFORMANCE/promql``, else ``<repo>/../shared/conformance/promql``."""
    root = os.environ.get("ALERTD_CONFORMANCE")
    if root:
        return Path(root) / "promql"
    return Path(__file__).resolve().parent.parent.parent / "shared" / "conformance" / "promql"


class ScriptError(Exception):
    """The script itself could not be read."""


class CaseFailure(AssertionError):
    """An eval case's result differs from its expectation."""


@dataclass
class Load:
    line: int
    interval: float
    series: list[tuple[Labels, list[object]]]
    # load_with_nhcb also loads native histograms named after the classic series' base name.
    native_names: frozenset[str] = frozenset()


@dataclass
class Eval:
    """One ``eval`` block and everything it expects."""

    file: str
    line: int
    expr: str
    loads: list[Load]  # the data in the store when this case runs
    instant_at: float | None = None
    range_: tuple[float, float, float] | None = None
    fail: bool = False
    fail_msg: str | None = None
    fail_regex: str | None = None
    ordered: bool = False
    expected_string: str | None = None
    range_vector: tuple[float, float, float] | None = None
    expected: list[tuple[Labels | None, list[object]]] = field(default_factory=list)
    uses_histograms: bool = False

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"


# -- parsing -----------------------------------------------------------------------------------


def _time(text: str) -> float:
    text = text.strip()
    if text.startswith("-"):
        return -_time(text[1:])
    try:
        return float(text)
    except ValueError:
        return parse_duration(text)


def _number(text: str) -> float:
    lowered = text.lower()
    sign = -1.0 if lowered.startswith("-") else 1.0
    body = lowered.lstrip("+-")
    if body.startswith("0x"):
        return sign * int(body, 16)
    return float(text)


def _split_series(text: str) -> tuple[str, str]:
    """``metric{a="b c"} 1 2 3`` -> (``metric{a="b c"}``, ``1 2 3``), respecting quotes."""
    text = text.strip()
    i = 0
    n = len(text)
    while i < n and not text[i].isspace() and text[i] != "{":
        i += 1
    if i < n and text[i] == "{":
        quote = ""
        while i < n:
            c = text[i]
            if quote:
                if c == "\\":
                    i += 1
                elif c == quote:
                    quote = ""
            elif c in "\"'`":
                quote = c
            elif c == "}":
                i += 1
                break
            i += 1
    return text[:i], text[i:].strip()


def _labels(descriptor: str) -> Labels:
    if descriptor.replace(" ", "") == "{}":
        return Labels()
    matchers = parse_selector(descriptor)
    return Labels.of((m.name, m.value) for m in matchers)


def _values(text: str) -> tuple[list[object], bool]:
    """Expand the series notation; returns the values and whether a histogram was among them."""
    out: list[object] = []
    histogram = False
    # Native histogram items ({{...}}, {{...}}xN, {{...}}+{{...}}xN) may contain spaces: cut
    # them out first and keep their positions, so the float samples around them stay in place.
    for part in _HISTOGRAM_ITEM.split(text):
        if part is None:
            continue
        if part.startswith("{{"):
            histogram = True
            m = re.search(r"x(\d+)$", part)
            out.extend([HISTOGRAM] * (int(m.group(1)) + 1 if m else 1))
            continue
        for token in part.split():
            out.extend(_expand(token))
    return out, histogram


_HISTOGRAM_ITEM = re.compile(r"(\{\{.*?\}\}(?:[+-]\{\{.*?\}\})?(?:x\d+)?)")
_TOKEN = re.compile(r"^(?P<a>[^x]+?)(?:(?P<op>[+-])(?P<b>[^x+-][^x]*))?x(?P<n>\d+)$")


def _expand(token: str) -> list[object]:
    if token == "_":
        return [None]
    if token == "stale":
        return [STALE_NAN]
    if token.startswith("_x"):
        return [None] * int(token[2:])
    m = _TOKEN.match(token)
    if m is None:
        return [_number(token)]
    a = _number(m.group("a"))
    n = int(m.group("n"))
    b = _number(m.group("b")) if m.group("b") else 0.0
    if m.group("op") == "-":
        b = -b
    # Accumulate as Prometheus does, so the float steps match.
    values: list[object] = []
    current = a
    for _ in range(n + 1):
        values.append(current)
        current += b
    return values


def _logical_lines(path: Path) -> list[tuple[int, str]]:
    lines = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            stripped = ""
        lines.append((number, stripped))
    return lines


_EVAL = re.compile(r"^eval(?:_(?P<mod>fail|ordered|warn|info))?\s+(?P<rest>.*)$")
_INSTANT = re.compile(r"^instant\s+at\s+(?P<at>\S+)\s+(?P<expr>.*)$")
_RANGE = re.compile(r"^range\s+from\s+(?P<start>\S+)\s+to\s+(?P<end>\S+)\s+step\s+(?P<step>\S+)\s+(?P<expr>.*)$")
_RANGE_VECTOR = re.compile(r"^from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)$")


def parse_script(path: Path) -> list[Eval]:
    """Every eval case of a script, each with the loads in effect before it."""
    lines = _logical_lines(path)
    loads: list[Load] = []
    cases: list[Eval] = []
    i = 0
    while i < len(lines):
        number, text = lines[i]
        i += 1
        if not text:
            continue
        word = text.split()[0]
        if word == "clear":
            loads = []
            continue
        block: list[tuple[int, str]] = []
        while i < len(lines) and lines[i][1]:
            block.append(lines[i])
            i += 1
        if word in ("load", "load_with_nhcb"):
            loads = [*loads, _parse_load(number, text, block, with_nhcb=word == "load_with_nhcb")]
            continue
        m = _EVAL.match(text)
        if m is None:
            raise ScriptError(f"{path.name}:{number}: unknown command {text!r}")
        cases.append(_parse_eval(path.name, number, m.group("mod"), m.group("rest"), block, loads))
    return cases


def _parse_load(number: int, text: str, block: list[tuple[int, str]], with_nhcb: bool) -> Load:
    interval = parse_duration(text.split()[1])
    series = []
    native: set[str] = set()
    for _, line in block:
        descriptor, values = _split_series(line)
        parsed, _ = _values(values)
        labels = _labels(descriptor)
        series.append((labels, parsed))
        name = labels.get("__name__")
        if with_nhcb:
            for suffix in ("_bucket", "_count", "_sum"):
                if name.endswith(suffix):
                    native.add(name[: -len(suffix)])
    return Load(number, interval, series, frozenset(native))


def _parse_eval(file: str, number: int, mod: str | None, rest: str, block: list[tuple[int, str]], loads: list[Load]) -> Eval:
    case = Eval(file=file, line=number, expr="", loads=loads)
    if m := _INSTANT.match(rest):
        case.instant_at = _time(m.group("at"))
        case.expr = m.group("expr")
    elif m := _RANGE.match(rest):
        case.range_ = (_time(m.group("start")), _time(m.group("end")), _time(m.group("step")))
        case.expr = m.group("expr")
    else:
        raise ScriptError(f"{file}:{number}: cannot read eval {rest!r}")
    case.fail = mod == "fail"
    case.ordered = mod == "ordered"
    for _, line in block:
        if line.startswith("expect "):
            _parse_expect(case, line[len("expect ") :].strip())
            continue
        if line.startswith("expected_fail_message "):
            case.fail_msg = line[len("expected_fail_message ") :].strip()
            continue
        if line.startswith("expected_fail_regexp "):
            case.fail_regex = line[len("expected_fail_regexp ") :].strip()
            continue
        descriptor, values = _split_series(line)
        if not values:
            try:  # a scalar result: just a number
                case.expected.append((None, [_number(descriptor)]))
                continue
            except ValueError:
                pass
        parsed, histogram = _values(values)
        case.uses_histograms |= histogram
        case.expected.append((_labels(descriptor), parsed))
    return case


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        return text[1:-1]
    return text


def _parse_expect(case: Eval, text: str) -> None:
    kind, _, rest = text.partition(" ")
    rest = rest.strip()
    if kind == "fail":
        case.fail = True
        if rest.startswith("msg:"):
            case.fail_msg = _unquote(rest[4:])
        elif rest.startswith("regex:"):
            case.fail_regex = _unquote(rest[6:])
    elif kind == "ordered":
        case.ordered = True
    elif kind == "string":
        case.expected_string = _unquote(rest)
    elif kind == "range":
        m = _RANGE_VECTOR.match(rest.removeprefix("vector").strip())
        if m is None:
            raise ScriptError(f"{case.id}: cannot read expect range vector {rest!r}")
        case.range_vector = (_time(m.group(1)), _time(m.group(2)), _time(m.group(3)))
    elif kind in ("info", "warn", "no_info", "no_warn"):
        pass  # annotations: not produced, not checked (see the module docstring)
    else:
        raise ScriptError(f"{case.id}: unknown expectation {text!r}")


# -- running -----------------------------------------------------------------------------------


def build_store(loads: list[Load]) -> Store:
    """A store holding the float samples of ``loads`` (histogram samples as stale markers).

    A sample loaded twice for the same series and time keeps the value loaded last, as in
    Prometheus' test storage.
    """
    samples: dict[Labels, dict[int, float]] = {}
    for load in loads:
        step_ms = int(round(load.interval * 1000))
        for labels, values in load.series:
            points = samples.setdefault(labels, {})
            for i, value in enumerate(values):
                if value is None:
                    continue
                if value is HISTOGRAM:
                    # The engine reads floats only. A histogram sample still hides older float
                    # samples from the lookback, as in Prometheus, and a stale marker does that.
                    value = STALE_NAN
                assert isinstance(value, float)
                points[i * step_ms] = value
    store = Store(retention=1e9)
    for labels, points in samples.items():
        series, _ = store.series(labels)
        for t in sorted(points):
            store.append(series, t, points[t])
    return store


def almost_equal(a: float, b: float) -> bool:
    """Prometheus' test comparison: equal within a relative 1e-6, NaN equal to NaN."""
    if a != a and b != b:
        return True
    if a == b:
        return True
    total = abs(a) + abs(b)
    diff = abs(a - b)
    if a == 0 or b == 0 or total < _MIN_NORMAL:
        return diff < EPSILON * _MIN_NORMAL
    return diff / min(total, sys.float_info.max) < EPSILON


def run_case(case: Eval, store: Store) -> None:
    """Evaluate one case against ``store``; raise ``CaseFailure`` if the result is not the expected one."""
    engine = Engine(store)
    try:
        if case.range_ is not None:
            start, end, step = case.range_
            result: object = engine.range(case.expr, start, end, step)
        else:
            assert case.instant_at is not None
            result = engine.instant(case.expr, case.instant_at)
    except (QueryError, ParseError) as exc:
        if not case.fail:
            raise CaseFailure(f"unexpected error: {exc}") from exc
        message = str(exc)
        if case.fail_msg is not None and message != case.fail_msg:
            raise CaseFailure(f"expected error {case.fail_msg!r}, got {message!r}") from exc
        if case.fail_regex is not None and re.search(case.fail_regex, message) is None:
            raise CaseFailure(f"expected error matching {case.fail_regex!r}, got {message!r}") from exc
        return
    if case.fail:
        raise CaseFailure(f"expected an error, got {result!r}")
    if case.range_ is not None:
        assert isinstance(result, list)
        start, _, step = case.range_
        _compare_matrix(case, result, start, step)
    elif case.expected_string is not None:
        if not isinstance(result, String) or result.value != case.expected_string:
            raise CaseFailure(f"expected string {case.expected_string!r}, got {result!r}")
    elif isinstance(result, Scalar):
        if len(case.expected) != 1 or case.expected[0][0] is not None:
            raise CaseFailure(f"got scalar {result.value}, expected {case.expected}")
        expected = case.expected[0][1][0]
        assert isinstance(expected, float)
        if not almost_equal(expected, result.value):
            raise CaseFailure(f"expected scalar {expected}, got {result.value}")
    elif isinstance(result, list) and result and isinstance(result[0], SeriesPoints):
        if case.range_vector is None:
            raise CaseFailure(f"got a range vector, expected {case.expected}")
        _compare_matrix(case, result, case.range_vector[0], case.range_vector[2])
    elif isinstance(result, list):
        if case.range_vector is not None:
            _compare_matrix(case, result, case.range_vector[0], case.range_vector[2])  # type: ignore[arg-type]
        else:
            _compare_vector(case, result)  # type: ignore[arg-type]
    else:
        raise CaseFailure(f"unexpected result {result!r}")


def _compare_vector(case: Eval, result: list[Sample]) -> None:
    expected = [(labels, values[0]) for labels, values in case.expected]
    if any(labels is None for labels, _ in expected):
        raise CaseFailure(f"expected a scalar, got vector {result}")
    if len(expected) != len(result):
        raise CaseFailure(f"expected {len(expected)} samples, got {len(result)}: {result}")
    by_labels = {labels: value for labels, value in expected}
    for i, sample in enumerate(result):
        if sample.labels not in by_labels:
            raise CaseFailure(f"unexpected sample {sample} (expected {expected})")
        value = by_labels[sample.labels]
        assert isinstance(value, float)
        if not almost_equal(value, sample.value):
            raise CaseFailure(f"{sample.labels}: expected {value}, got {sample.value}")
        if case.ordered and expected[i][0] != sample.labels:
            raise CaseFailure(f"expected {expected[i][0]} at position {i}, got {sample.labels}")


def _compare_matrix(case: Eval, result: list[SeriesPoints], start: float, step: float) -> None:
    start_ms, step_ms = int(round(start * 1000)), int(round(step * 1000))
    expected: dict[Labels, list[tuple[int, float]]] = {}
    for labels, values in case.expected:
        points = []
        for i, value in enumerate(values):
            if value is None:
                continue
            assert isinstance(value, float)
            points.append((start_ms + i * step_ms, value))
        expected[labels if labels is not None else Labels()] = points
    actual = {s.labels: s.points for s in result if s.points}
    if set(expected) != set(actual):
        raise CaseFailure(f"series differ: expected {sorted(map(str, expected))}, got {sorted(map(str, actual))}")
    for labels, points in expected.items():
        got = actual[labels]
        if [t for t, _ in points] != [t for t, _ in got]:
            raise CaseFailure(f"{labels}: expected points at {[t for t, _ in points]}, got {got}")
        for (t, want), (_, value) in zip(points, got):
            if not almost_equal(want, value):
                raise CaseFailure(f"{labels} at {t / 1000}s: expected {want}, got {value}")


# -- skips and the summary ---------------------------------------------------------------------


@dataclass(frozen=True)
class Skip:
    file: str
    line: int | None
    expr: str | None
    reason: str


def load_skips(path: Path = SKIPS_FILE) -> list[Skip]:
    """The explicit skip list; every entry names a file, a line or an expression, and a reason."""
    if not path.exists():
        return []
    entries = yaml.safe_load(path.read_text()) or []
    skips = []
    for entry in entries:
        if not entry.get("reason"):
            raise ScriptError(f"skip entry without a reason: {entry}")
        skips.append(Skip(entry["file"], entry.get("line"), entry.get("expr"), entry["reason"]))
    return skips


def skip_reason(case: Eval, skips: list[Skip]) -> str | None:
    """Why the case is skipped, or None if it runs."""
    for skip in skips:
        if skip.file != case.file:
            continue
        if skip.line is not None:
            if skip.line == case.line:
                return skip.reason
        elif skip.expr == case.expr:
            return skip.reason
    if case.uses_histograms:
        return "native histograms are out of scope"
    return None


def all_cases() -> Iterator[Eval]:
    """Every eval case of every script, in file order."""
    folder = conformance_dir()
    for path in sorted(folder.glob("*.test")):
        yield from parse_script(path)


def summary() -> dict[str, dict[str, int]]:
    """Per file: how many cases passed, failed and were skipped."""
    skips = load_skips()
    table: dict[str, dict[str, int]] = {}
    stores: dict[int, Store] = {}
    for case in all_cases():
        row = table.setdefault(case.file, {"passed": 0, "failed": 0, "skipped": 0})
        if skip_reason(case, skips) is not None:
            row["skipped"] += 1
            continue
        store = stores.get(id(case.loads))
        if store is None:
            stores.clear()
            store = stores[id(case.loads)] = build_store(case.loads)
        try:
            run_case(case, store)
        except Exception:
            row["failed"] += 1
        else:
            row["passed"] += 1
    return table


def format_summary(table: dict[str, dict[str, int]]) -> str:
    lines = [f"{'file':<22} {'passed':>7} {'failed':>7} {'skipped':>8} {'skip %':>7}"]
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    for file, row in table.items():
        total = sum(row.values())
        lines.append(
            f"{file:<22} {row['passed']:>7} {row['failed']:>7} {row['skipped']:>8} {100 * row['skipped'] / max(total, 1):>6.1f}%"
        )
        for k in totals:
            totals[k] += row[k]
    total = sum(totals.values())
    lines.append(
        f"{'total':<22} {totals['passed']:>7} {totals['failed']:>7} {totals['skipped']:>8} {100 * totals['skipped'] / max(total, 1):>6.1f}%"
    )
    return "\n".join(lines)


def main() -> None:
    if not conformance_dir().is_dir():
        print(f"no conformance scripts at {conformance_dir()}")
        return
    print(format_summary(summary()))


if __name__ == "__main__":
    main()
