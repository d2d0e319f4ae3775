"""Exposition parser: Prometheus text format 0.0.4 and OpenMetrics 1.0.0 payloads into samples.

This is the scrape hot path. The caller keeps one ``cache`` per target that maps the raw
series text of a line (its *head*: everything before the value) to the caller's own series
reference. A line whose head is already in the cache is taken apart with one ``rpartition``,
one dict lookup and one ``float()``; its labels are never parsed again. Lines that miss the
cache, or whose value or timestamp is spelled in any unusual way, go through the full parser,
so the result is the same whether the cache is empty or warm.

The text format is lenient the way Prometheus' own text parser is (spaces and tabs between
tokens, a trailing comma in label sets, unknown ``#`` comments); OpenMetrics is checked
strictly against its specification, including the per-type rules on sample names, values,
label sets, ordering and ``# EOF``. Most of those rules follow from a head alone, given the
family it appears in, so the caller may also keep a :class:`ParserMemo` per target: the
parser records there what each head was found to be, and a repeat OpenMetrics scrape checks
only what can change (values, timestamps, exemplars, metadata, the order and grouping of
lines). With or without a memo, warm or cold, the result is the same.
"""

from __future__ import annotations

import math
import re
import sys
from array import array
from bisect import insort
from collections.abc import Callable, Mapping
from itertools import chain
from dataclasses import dataclass

from daemon.tsdb.labels import METRIC_NAME, Labels

OPENMETRICS = "openmetrics"
TEXT = "text"

__all__ = ["OPENMETRICS", "TEXT", "NewSeries", "ParseError", "Parsed", "ParserMemo", "format_of", "parse"]


class ParseError(ValueError):
    """An invalid payload: ``.line`` is the 1-based line number, ``.message`` the reason."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(slots=True)
class NewSeries:
    """A series the cache did not know: its raw head (the cache key) and its parsed labels."""

    head: str
    labels: Labels


@dataclass(slots=True)
class Parsed:
    """One payload's samples, in payload order.

    ``refs[i]`` is ``cache[head]`` for a known head, else a :class:`NewSeries`; ``new`` lists
    the indexes of the latter. ``timestamps`` maps a sample index to its explicit timestamp in
    milliseconds, only for samples that carried one.
    """

    refs: list[object]
    values: array[float]
    timestamps: dict[int, int]
    new: list[int]


def format_of(content_type: str | None) -> str:
    """The payload format announced by a scrape response's Content-Type header."""
    if content_type:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if media_type == "application/openmetrics-text":
            return OPENMETRICS
    return TEXT


def parse(text: str, cache: Mapping[str, object], fmt: str = TEXT, memo: ParserMemo | None = None) -> Parsed:
    """Parse a whole payload, all or nothing: any invalid line raises :class:`ParseError`.

    ``cache`` is only read, never changed: the caller stores ``cache[new.head] = ref`` for the
    series it resolves, so that the next scrape of the same target takes the fast path.
    ``memo`` is the target's :class:`ParserMemo`, which the parser itself keeps up to date;
    it makes repeat OpenMetrics scrapes fast and changes no result.
    """
    if fmt == OPENMETRICS:
        return _OpenMetricsReader(cache, memo).read(text)
    return _parse_text(text, cache)


# --- shared lexical rules -------------------------------------------------------------------

_MISSING = object()
_INT64_MAX = 2**63 - 1

_METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
_QUOTED = r'"(?:[^"\\]|\\.)*"'

# What Go's strconv.ParseFloat accepts, minus the hex and underscore forms Prometheus refuses.
_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
    r"|[nN][aA][nN]"
)
_REAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_ESCAPE = re.compile(r"\\(.)")
_ESCAPED = {"\\": "\\", '"': '"', "n": "\n"}


def _number(token: str, lineno: int, what: str = "value") -> float:
    """A sample value as Prometheus reads it, or a ParseError."""
    if _GO_FLOAT.fullmatch(token) is None:
        raise ParseError(lineno, f"invalid {what} {token!r}")
    value = float(token)
    if math.isinf(value) and token.lstrip("+-")[:1] not in ("i", "I"):
        raise ParseError(lineno, f"{what} {token!r} is out of range")
    return value


def _unescape(value: str) -> str:
    # Unknown escapes stay as written, as in Prometheus (`\z` is a backslash and a z).
    return _ESCAPE.sub(lambda m: _ESCAPED.get(m.group(1), m.group(0)), value)


def _labels(name: str, pairs: list[tuple[str, str]], lineno: int) -> Labels:
    """The label set of a sample from its raw (still escaped) label pairs."""
    found: dict[str, str] = {METRIC_NAME: name}
    for label, raw in pairs:
        if label in found:
            raise ParseError(lineno, f"duplicate label name {label!r}")
        found[label] = _unescape(raw) if "\\" in raw else raw
    return _label_set(sorted(item for item in found.items() if item[1]))


def _label_set(sorted_pairs: list[tuple[str, str]]) -> Labels:
    # The same value Labels.of builds, without its generic checks: this runs once per new series.
    return Labels(map(sys.intern, chain.from_iterable(sorted_pairs)))


# --- Prometheus text format ------------------------------------------------------------------

_WS = r"[ \t]"
# Prometheus accepts a comma, or nothing, between label pairs, and one after the last.
_TEXT_PAIR_SHAPE = rf"{_LABEL_NAME}{_WS}*={_WS}*{_QUOTED}{_WS}*(?:,{_WS}*)?"
_TEXT_PAIR_RE = re.compile(rf"({_LABEL_NAME}){_WS}*={_WS}*\"((?:[^\"\\]|\\.)*)\"")
_TEXT_SAMPLE = re.compile(
    rf"({_WS}*({_METRIC_NAME})(?:{_WS}*\{{{_WS}*((?:{_TEXT_PAIR_SHAPE})*)\}})?)"
    rf"(?:(?<=\}}){_WS}*|{_WS}+)([^ \t{{]+)(?:{_WS}+([^ \t]+))?{_WS}*"
)
_METRIC_NAME_RE = re.compile(_METRIC_NAME)
_LABEL_NAME_RE = re.compile(_LABEL_NAME)
_TEXT_SERIES = re.compile(rf"{_METRIC_NAME}(?:{_WS}*\{{{_WS}*(?:{_TEXT_PAIR_SHAPE})*\}})?")
_BALANCED_QUOTES = re.compile(r'[^"]*(?:"(?:[^"\\]|\\.)*"[^"]*)*')
_TEXT_META = re.compile(rf"#{_WS}+(HELP|TYPE){_WS}+(.*)")
_TEXT_TYPES = frozenset(("counter", "gauge", "histogram", "summary", "untyped"))
_TIMESTAMP = re.compile(r"-?[0-9]+")


def _parse_text(text: str, cache: Mapping[str, object]) -> Parsed:
    refs: list[object] = []
    values = array("d")
    timestamps: dict[int, int] = {}
    new: list[int] = []
    get = cache.get
    add_ref = refs.append
    add_value = values.append
    missing = _MISSING
    plain_labels = _PlainHeads().labels
    for index, line in enumerate(text.split("\n")):
        # Fast path: "head value" or "head value timestamp" with a known head and a plainly
        # spelled value. Anything unusual (NaN, Inf, tabs, underscores, exotic digits, a value
        # Go would call out of range) falls through to the full parser below.
        head, _, token = line.rpartition(" ")
        ref = get(head, missing)
        if ref is not missing:
            try:
                value = float(token)
            except ValueError:
                pass
            else:
                if value - value == 0.0 and token.isascii() and token.isprintable() and "_" not in token:
                    add_ref(ref)
                    add_value(value)
                    continue
        else:
            series, _, number = head.rpartition(" ")
            ref = get(series, missing)
            if ref is not missing and token.isascii() and token.isdigit() and len(token) < 19:
                try:
                    value = float(number)
                except ValueError:
                    pass
                else:
                    if value - value == 0.0 and number.isascii() and number.isprintable() and "_" not in number:
                        timestamps[len(refs)] = int(token)
                        add_ref(ref)
                        add_value(value)
                        continue
            else:
                # First sight of a series: a plainly written head is taken apart with str methods.
                try:
                    value = float(token)
                except ValueError:
                    pass
                else:
                    if (
                        value - value == 0.0
                        and token.isascii()
                        and token.isprintable()
                        and "_" not in token
                        and (labels := plain_labels(head)) is not None
                    ):
                        new.append(len(refs))
                        add_ref(NewSeries(head, labels))
                        add_value(value)
                        continue
        _parse_text_line(line, index + 1, get, refs, values, timestamps, new)
    return Parsed(refs, values, timestamps, new)


class _PlainHeads:
    """Label sets of series heads written the way nearly every exporter writes them.

    ``name{a="x",b="y"}``: no whitespace, no escapes, no empty values, a comma between pairs
    and perhaps one after the last. Anything else gets None and goes to the full parser, which
    accepts or rejects it. One instance per payload: the metric names and the label-name
    layouts it has checked are remembered, since a payload repeats a few of them many times.
    """

    __slots__ = ("_names", "_layouts")

    def __init__(self) -> None:
        self._names: dict[str, str] = {}
        # The parts of a head between its quoted values ('', '{a=', ',b=', '}') -> the label
        # names, interned, and whether they are already in label-set order; None if not plain.
        self._layouts: dict[tuple[str, ...], tuple[tuple[str, ...], bool] | None] = {}

    def labels(self, head: str) -> Labels | None:
        if "\\" in head or '=""' in head:
            return None  # escapes and empty values: the full parser's business
        # 'm{a="x",b="y"}' -> ['', 'm', '{a=', 'x', ',b=', 'y', '}']: the quotes delimit every
        # value, so the values hold no quote, and the parts between them must be exactly
        # '{a=', ',b=', ... then '}' or ',}'. Dropping the last part leaves the label set's
        # own layout, with the metric name and values already in place.
        parts = ('"' + head.replace("{", '"{', 1)).split('"')
        metric = self._names.get(parts[1])
        if metric is None:
            if _METRIC_NAME_RE.fullmatch(parts[1]) is None:
                return None
            metric = self._names[parts[1]] = sys.intern(parts[1])
        key = tuple(parts[0::2])
        layout = self._layouts.get(key, _MISSING)
        if layout is _MISSING:
            layout = self._layouts[key] = _label_layout(key)
        if layout is None:
            return None
        names, in_order = layout  # type: ignore[misc]
        if len(parts) > 2:
            del parts[-1]
        parts[0::2] = names
        parts[1] = metric
        if in_order:
            return Labels(parts)
        it = iter(parts)
        pairs = list(zip(it, it))
        pairs.sort()
        return Labels(chain.from_iterable(pairs))


def _label_layout(key: tuple[str, ...]) -> tuple[tuple[str, ...], bool] | None:
    """The label names that a plain head's parts between quotes spell (see ``_PlainHeads``),
    with __name__ first, and whether they are in label-set order; None if they are not plain."""
    if key == ("",) or key == ("", "{}"):
        return (METRIC_NAME,), True
    if len(key) < 3 or key[0] != "" or key[-1] not in ("}", ",}"):
        return None
    names = []
    for i, part in enumerate(key[1:-1]):
        if part[:1] != ("{" if i == 0 else ",") or part[-1:] != "=":
            return None
        names.append(part[1:-1])
    if not all(_LABEL_NAME_RE.fullmatch(n) for n in names):
        return None
    ordered = sorted(names)
    if METRIC_NAME in names or len(set(ordered)) != len(ordered):
        return None  # let the full parser name the problem
    return (METRIC_NAME, *map(sys.intern, names)), ordered == names and ordered[0] > METRIC_NAME


def _parse_text_line(
    line: str,
    lineno: int,
    get: Callable[[str, object], object],
    refs: list[object],
    values: array[float],
    timestamps: dict[int, int],
    new: list[int],
) -> None:
    """The full, strict-enough parse of one text-format line, appending its sample if any."""
    stripped = line.lstrip(" \t")
    if not stripped:
        return
    if stripped[0] == "#":
        _check_text_comment(stripped, lineno)
        return
    match = _TEXT_SAMPLE.fullmatch(line)
    if match is None:
        raise ParseError(lineno, _text_line_problem(line))
    head, name, label_text, token, ts_token = match.groups()
    value = _number(token, lineno)
    if ts_token is not None:
        if _TIMESTAMP.fullmatch(ts_token) is None:
            raise ParseError(lineno, f"invalid timestamp {ts_token!r}")
        ts = int(ts_token)
        if not -_INT64_MAX <= ts <= _INT64_MAX:
            raise ParseError(lineno, f"timestamp {ts_token!r} is out of range")
        timestamps[len(refs)] = ts
    ref = get(head, _MISSING)
    if ref is _MISSING:
        pairs = _TEXT_PAIR_RE.findall(label_text) if label_text else []
        ref = NewSeries(head, _labels(name, pairs, lineno))
        new.append(len(refs))
    refs.append(ref)
    values.append(value)


def _check_text_comment(line: str, lineno: int) -> None:
    match = _TEXT_META.fullmatch(line)
    if match is None:
        return  # an ordinary comment
    keyword, rest = match.groups()
    parts = rest.split(None, 1)
    if not parts or re.fullmatch(_METRIC_NAME, parts[0]) is None:
        raise ParseError(lineno, f"# {keyword} needs a valid metric name")
    if keyword == "TYPE":
        kind = parts[1].strip() if len(parts) > 1 else ""
        if kind not in _TEXT_TYPES:
            raise ParseError(lineno, f"invalid metric type {kind!r}")


def _text_line_problem(line: str) -> str:
    """Why a line is not a sample, in words a person can act on."""
    stripped = line.strip(" \t")
    if stripped.startswith("<"):
        return "expected a metric sample, got markup (is this an HTML page?)"
    series = _TEXT_SERIES.match(stripped)
    if series is None:
        return f"expected a metric name, got {_preview(stripped)}"
    rest = stripped[series.end():].lstrip(" \t")
    if rest.startswith("{"):
        if _BALANCED_QUOTES.fullmatch(rest) is None:
            return "unterminated label value (a missing or escaped closing quote)"
        return f"invalid label set in {_preview(rest)}"
    if not rest:
        return "missing sample value"
    return f"invalid sample value or timestamp {_preview(rest)}"


def _preview(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


# --- OpenMetrics 1.0.0 ----------------------------------------------------------------------

_OM_PAIR = rf"({_LABEL_NAME})=\"((?:[^\"\\]|\\.)*)\""
_OM_PAIR_RE = re.compile(_OM_PAIR)
_OM_LABELS = rf"\{{(?:{_LABEL_NAME}=\"(?:[^\"\\]|\\.)*\"(?:,{_LABEL_NAME}=\"(?:[^\"\\]|\\.)*\")*)?\}}"
_OM_SAMPLE = re.compile(
    rf"(({_METRIC_NAME})({_OM_LABELS})?) ([^ ]+)(?: ([^ ]+))?"
    rf"(?: # ({_OM_LABELS}) ([^ ]+)(?: ([^ ]+))?)?"
)
_OM_META = re.compile(rf"# (HELP|TYPE|UNIT) ({_METRIC_NAME}) (.*)")
_OM_UNIT = re.compile(r"[a-zA-Z0-9_:]*")
_OM_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
    r"|[nN][aA][nN]"
)
_EXEMPLAR_MAX_RUNES = 128

# The sample-name suffixes each metric type may use, and what each one means.
_OM_SUFFIXES: dict[str, dict[str, str]] = {
    "counter": {"_total": "total", "_created": "created"},
    "gauge": {"": "gauge"},
    "unknown": {"": "gauge"},
    "histogram": {"_bucket": "bucket", "_count": "count", "_sum": "sum", "_created": "created"},
    "gaugehistogram": {"_bucket": "bucket", "_gcount": "count", "_gsum": "gsum"},
    "summary": {"": "quantile", "_count": "count", "_sum": "sum", "_created": "created"},
    "info": {"_info": "info"},
    "stateset": {"": "state"},
}
_EXEMPLAR_ROLES = frozenset(("total", "bucket"))
# Counter-like samples: never NaN, never negative (a gauge histogram's _gsum may be negative).
_NOT_NAN_ROLES = frozenset(("total", "bucket", "count", "sum", "gsum"))
_HISTOGRAM_KINDS = frozenset(("histogram", "gaugehistogram"))
# The label that tells apart the samples of one metric point, by role (a stateset's is its name).
_SPECIAL_LABEL = {"bucket": "le", "quantile": "quantile"}


def _om_number(token: str, lineno: int, what: str = "value") -> float:
    if _OM_NUMBER.fullmatch(token) is None:
        raise ParseError(lineno, f"invalid {what} {token!r}")
    return float(token)


def _om_timestamp(token: str, lineno: int, what: str = "timestamp") -> float:
    """OpenMetrics timestamps are seconds, a real number: no NaN, no infinities."""
    if _REAL.fullmatch(token) is None:
        raise ParseError(lineno, f"invalid {what} {token!r}")
    seconds = float(token)
    if math.isinf(seconds):
        raise ParseError(lineno, f"{what} {token!r} is out of range")
    return seconds


def _om_pairs(label_text: str | None) -> list[tuple[str, str]]:
    return _OM_PAIR_RE.findall(label_text) if label_text else []


def _om_labels(label_text: str | None) -> dict[str, str]:
    """A sample's labels, unescaped."""
    return {k: _unescape(v) if "\\" in v else v for k, v in _om_pairs(label_text)}


def _om_series(name: str, labels: list[tuple[str, str]]) -> Labels:
    """The label set of a series from its checked and sorted labels, as ``Labels.of`` builds it."""
    items = [item for item in labels if item[1]]
    insort(items, (METRIC_NAME, name))
    return Labels(chain.from_iterable(items))


@dataclass(slots=True)
class _HistogramPoint:
    """What the rules of one histogram metric point need to remember across its lines."""

    bucket: float | None = None
    bucket_value: float = 0.0
    has_inf: bool = False
    inf_value: float = 0.0
    count: float | None = None
    has_sum: bool = False
    has_gsum: bool = False
    negative_bucket: bool = False
    negative_gsum: bool = False
    started: int = 0


@dataclass(slots=True, eq=False)
class _HeadFacts:
    """What the strict checks learnt about one series head, in the family context it met.

    Everything here follows from the head and the family and type that were current before
    its line, so a later line with the same head in the same context needs none of it again.
    """

    context: tuple[str, str | None]  # (family, type) current before the line
    starts_family: bool  # the name is not one of that family's: it opens a family of its own
    name: str
    role: str  # what the sample is to its family: "total", "bucket", "count", "gauge", ...
    group: tuple[str, ...]  # its metric point: its labels but le/quantile/state, flat
    bound: float  # a bucket's le
    seen: int  # the memo generation that last met this head


class ParserMemo:
    """What the OpenMetrics checks learnt about one target's series, kept across its scrapes.

    Hold one per target beside its series cache, pass it to every :func:`parse` of that
    target, and drop both together. A repeat OpenMetrics scrape then takes a known head's
    family, type, role and bucket bound from here and checks only what can change between
    scrapes: values, timestamps, exemplars, metadata, and the order and grouping of lines.
    The result is the same with a fresh memo, a warm one or none; the memo only saves work.
    It forgets heads the target stopped exposing. The text format does not use it.
    """

    __slots__ = ("_heads", "_generation")

    def __init__(self) -> None:
        self._heads: dict[str, _HeadFacts] = {}
        self._generation = 0

    def __len__(self) -> int:
        """How many series heads the memo knows."""
        return len(self._heads)


class _OpenMetricsReader:
    """The strict OpenMetrics parse of one payload; one instance per ``parse`` call."""

    def __init__(self, cache: Mapping[str, object], memo: ParserMemo | None) -> None:
        self.cache = cache
        self.lasting = memo is not None  # does what it learns outlive this parse?
        if memo is None:
            memo = ParserMemo()
        self.memo = memo
        memo._generation += 1
        self.generation = memo._generation
        self.heads = memo._heads
        self.refs: list[object] = []
        self.values = array("d")
        self.timestamps: dict[int, int] = {}
        self.new: list[int] = []
        self.claimed: set[str] = set()  # sample names owned by earlier metric families
        self.group_keys: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._start_family("", None, 0)

    def read(self, text: str) -> Parsed:
        if not text:
            raise ParseError(1, "empty payload: missing # EOF")
        lines = text.split("\n")
        if lines[-1] == "" and len(lines) > 1:
            lines.pop()  # the newline that ends the last line
        last = len(lines)
        known = self.heads.get
        cached = self.cache.get
        missing = _MISSING
        for index, line in enumerate(lines):
            # Fast path: "head value" with a head already checked in this family context, known
            # to the cache, and a plainly spelled finite value. Timestamps, exemplars, NaN, the
            # infinities and heads the memo or the cache do not know take the full path below.
            head, _, token = line.rpartition(" ")
            facts = known(head)
            if facts is not None and facts.context == self.context:
                try:
                    value = float(token)
                except ValueError:
                    pass
                else:
                    if value - value == 0.0 and token.isascii() and token.isprintable() and "_" not in token:
                        ref = cached(head, missing)
                        if ref is not missing:
                            if facts.starts_family:
                                self._begin_family(facts.name, index + 1)
                            self._take(facts, head, ref, value, None, None, index + 1)
                            continue
            lineno = index + 1
            if line == "# EOF":
                if lineno != last:
                    raise ParseError(lineno + 1, "content after # EOF")
                self._end_family(lineno)
                self._forget_unseen()
                return Parsed(self.refs, self.values, self.timestamps, self.new)
            if not line:
                raise ParseError(lineno, "blank lines are not allowed in OpenMetrics")
            if line[0] == "#":
                self._metadata(line, lineno)
            else:
                self._sample(line, lineno)
        raise ParseError(last, "missing # EOF at the end of the payload")

    def _forget_unseen(self) -> None:
        # Heads a target stopped exposing would otherwise stay in its memo for good.
        heads = self.heads
        if len(heads) > 2 * len(self.refs) + 64:
            generation = self.generation
            self.memo._heads = {head: facts for head, facts in heads.items() if facts.seen == generation}

    # families

    def _start_family(self, name: str, kind: str | None, lineno: int) -> None:
        if name and name in self.claimed:
            raise ParseError(lineno, f"metric family {name!r} appears twice or clashes with another")
        self.family = name
        self.kind = kind
        self.context = (name, kind)
        self.suffixes = _OM_SUFFIXES.get(kind or "unknown", {"": "gauge"})
        self.seen_meta: set[str] = set()
        self.unit = ""
        self.has_samples = False
        self.group: tuple[str, ...] | None = None
        self.group_ts: float | None = None
        self.groups: set[tuple[str, ...]] = set()
        self.point: _HistogramPoint | None = None

    def _end_family(self, lineno: int) -> None:
        self._end_point(lineno)
        if self.family:
            for suffix in self.suffixes:
                self.claimed.add(self.family + suffix)
            self.claimed.add(self.family)

    def _begin_family(self, name: str, lineno: int) -> None:
        """A sample whose name the current family does not own opens a family of unknown type."""
        self._end_family(lineno)
        self._start_family(name, None, lineno)

    def _set_type(self, kind: str, lineno: int) -> None:
        self.kind = kind
        self.context = (self.family, kind)
        self.suffixes = _OM_SUFFIXES[kind]
        for suffix in self.suffixes:
            if self.family + suffix in self.claimed:
                raise ParseError(lineno, f"metric name {self.family + suffix!r} clashes with an earlier family")

    def _metadata(self, line: str, lineno: int) -> None:
        match = _OM_META.fullmatch(line)
        if match is None:
            raise ParseError(lineno, f"invalid metadata line {_preview(line)} (expected # HELP, # TYPE, # UNIT or # EOF)")
        keyword, name, rest = match.groups()
        if name != self.family:
            self._end_family(lineno)
            self._start_family(name, None, lineno)
        elif self.has_samples:
            raise ParseError(lineno, f"# {keyword} for {name!r} after its samples")
        if keyword in self.seen_meta:
            raise ParseError(lineno, f"second # {keyword} for {name!r}")
        self.seen_meta.add(keyword)
        if keyword == "TYPE":
            if rest not in _OM_SUFFIXES:
                raise ParseError(lineno, f"invalid metric type {rest!r}")
            self._set_type(rest, lineno)
        elif keyword == "UNIT":
            if _OM_UNIT.fullmatch(rest) is None:
                raise ParseError(lineno, f"invalid unit {rest!r}")
            if rest and not name.endswith("_" + rest):
                raise ParseError(lineno, f"metric name {name!r} must end with its unit {rest!r}")
            self.unit = rest
        if self.unit and self.kind in ("info", "stateset"):
            raise ParseError(lineno, f"a {self.kind} cannot have a unit")

    # samples

    def _sample(self, line: str, lineno: int) -> None:
        """The full path of a sample line: its syntax, then its head's facts unless the memo has them."""
        match = _OM_SAMPLE.fullmatch(line)
        if match is None:
            raise ParseError(lineno, _om_line_problem(line))
        head, name, label_text, token, ts_token, ex_labels, ex_value, ex_ts = match.groups()
        value = _om_number(token, lineno)
        seconds = _om_timestamp(ts_token, lineno) if ts_token is not None else None
        exemplar = (ex_labels, ex_value, ex_ts) if ex_labels is not None else None

        ref = self.cache.get(head, _MISSING)
        facts = self.heads.get(head)
        if facts is not None and facts.context == self.context:
            if facts.starts_family:
                self._begin_family(name, lineno)
            labels = sorted(_om_labels(label_text).items()) if ref is _MISSING else None
        else:
            facts, labels = self._learn(head, name, label_text, lineno)
        if ref is _MISSING:
            ref = NewSeries(head, _om_series(name, labels))  # type: ignore[arg-type]
            self.new.append(len(self.refs))
        self._take(facts, head, ref, value, seconds, exemplar, lineno)

    def _learn(self, head: str, name: str, label_text: str | None, lineno: int) -> tuple[_HeadFacts, list[tuple[str, str]]]:
        """Check everything about a head that does not change between scrapes, and remember it.

        Returns its facts and its labels, unescaped and sorted, without the metric name."""
        context = self.context
        suffix = name[len(self.family):] if name.startswith(self.family) else None
        role = self.suffixes.get(suffix) if suffix is not None else None  # type: ignore[arg-type]
        starts_family = role is None
        if starts_family:
            self._begin_family(name, lineno)
            role = "gauge"

        pairs = _om_pairs(label_text)
        labels = {k: _unescape(v) if "\\" in v else v for k, v in pairs}
        if len(labels) != len(pairs) or METRIC_NAME in labels:
            raise ParseError(lineno, "duplicate label name")
        bound = 0.0
        if role == "bucket":
            le = labels.get("le")
            if le is None:
                raise ParseError(lineno, "histogram bucket without an 'le' label")
            bound = _om_number(le, lineno, "le label")
            if math.isnan(bound) or (math.isinf(bound) and le != "+Inf"):
                raise ParseError(lineno, f"invalid le label {le!r}")
        elif role == "quantile":
            q = labels.get("quantile")
            if q is None:
                raise ParseError(lineno, "summary quantile sample without a 'quantile' label")
            quantile = _om_number(q, lineno, "quantile label")
            if not 0.0 <= quantile <= 1.0:
                raise ParseError(lineno, f"quantile label {q!r} is not between 0 and 1")
        elif role == "state" and self.family not in labels:
            raise ParseError(lineno, f"stateset sample without its {self.family!r} label")

        items = sorted(labels.items())
        if self.kind == "info":
            group: tuple[str, ...] = ()
        else:
            special = _SPECIAL_LABEL.get(role)
            if role == "state":
                special = self.family
            # Flat and, in a memo the caller keeps, interned: the memo holds one per series, and
            # its strings are then the ones the store keeps. The samples of a histogram share one.
            flat = chain.from_iterable(items if special is None else [item for item in items if item[0] != special])
            if self.lasting:
                group = tuple(map(sys.intern, flat))
                group = self.group_keys.setdefault(group, group)
            else:
                group = tuple(flat)
        facts = _HeadFacts(context, starts_family, name, role, group, bound, 0)
        if self.lasting:
            facts.name = sys.intern(name)
            self.heads[head] = facts
        return facts, items

    def _take(
        self,
        facts: _HeadFacts,
        head: str,
        ref: object,
        value: float,
        seconds: float | None,
        exemplar: tuple[str, str, str | None] | None,
        lineno: int,
    ) -> None:
        """Check what can change between scrapes (value, exemplar, grouping, histogram rules),
        then record the sample under ``ref``."""
        self.has_samples = True
        role = facts.role
        if role in _NOT_NAN_ROLES:
            if value != value:
                raise ParseError(lineno, f"{role} value must not be NaN")
            if value < 0 and role != "gsum":
                raise ParseError(lineno, f"{role} value must not be negative")
        elif role == "quantile":
            if value < 0:
                raise ParseError(lineno, "quantile value must not be negative")
        elif role == "info":
            if value != 1.0:
                raise ParseError(lineno, "info value must be 1")
        elif role == "state":
            if value not in (0.0, 1.0):
                raise ParseError(lineno, "stateset value must be 0 or 1")
        if exemplar is not None:
            self._check_exemplar(role, *exemplar, lineno)

        # Each metric's lines are contiguous, and its timestamps all present and rising, or all absent.
        group = facts.group
        if group == self.group:
            if (seconds is None) != (self.group_ts is None):
                raise ParseError(lineno, "a metric mixes samples with and without timestamps")
            if seconds is not None and self.group_ts is not None and seconds < self.group_ts and self.kind != "info":
                raise ParseError(lineno, "timestamps go backwards within a metric")
        elif group in self.groups:
            raise ParseError(lineno, "the samples of a metric are not grouped together")
        else:
            self.groups.add(group)
        if (group != self.group or seconds != self.group_ts) and self.point is not None:
            self._end_point(lineno)
        self.group = group
        self.group_ts = seconds
        if self.kind in _HISTOGRAM_KINDS:
            self._histogram_rules(role, value, facts.bound, lineno)

        facts.seen = self.generation
        index = len(self.refs)
        if seconds is not None:
            self.timestamps[index] = round(seconds * 1000)
        self.refs.append(ref)
        self.values.append(value)

    def _check_exemplar(self, role: str, label_text: str, value: str, ts: str | None, lineno: int) -> None:
        if role not in _EXEMPLAR_ROLES:
            raise ParseError(lineno, "exemplars are only allowed on counter totals and histogram buckets")
        pairs = _om_pairs(label_text)
        if len({k for k, _ in pairs}) != len(pairs):
            raise ParseError(lineno, "duplicate exemplar label name")
        runes = sum(len(k) + len(_unescape(v)) for k, v in pairs)
        if runes > _EXEMPLAR_MAX_RUNES:
            raise ParseError(lineno, f"exemplar labels are {runes} characters long, the limit is 128")
        _om_number(value, lineno, "exemplar value")
        if ts is not None:
            _om_timestamp(ts, lineno, "exemplar timestamp")

    def _histogram_rules(self, role: str, value: float, bound: float, lineno: int) -> None:
        point = self.point
        if point is None:
            point = self.point = _HistogramPoint(started=lineno)
        if role == "bucket":
            if point.bucket is not None and bound <= point.bucket:
                raise ParseError(lineno, "histogram buckets are not in increasing 'le' order")
            if value < point.bucket_value:
                raise ParseError(lineno, "histogram bucket counts decrease")
            point.bucket = bound
            point.bucket_value = value
            if bound < 0:
                point.negative_bucket = True
            if bound == math.inf:
                point.has_inf = True
                point.inf_value = value
        elif role == "count":
            point.count = value
        elif role == "sum":
            point.has_sum = True
        elif role == "gsum":
            point.has_gsum = True
            point.negative_gsum = value < 0

    def _end_point(self, lineno: int) -> None:
        point = self.point
        self.point = None
        if point is None:
            return
        where = point.started
        if not point.has_inf:
            raise ParseError(where, f"histogram {self.family!r} has no le=\"+Inf\" bucket")
        if point.count is not None and point.count != point.inf_value:
            raise ParseError(where, f"histogram {self.family!r} count does not match its +Inf bucket")
        count_name = "_gcount" if self.kind == "gaugehistogram" else "_count"
        sum_name = "_gsum" if self.kind == "gaugehistogram" else "_sum"
        if (point.count is not None) != (point.has_sum or point.has_gsum):
            raise ParseError(where, f"histogram {self.family!r} needs both {count_name} and {sum_name}, or neither")
        if point.negative_bucket and point.has_sum:
            raise ParseError(where, f"histogram {self.family!r} has negative buckets, so it cannot have _sum")
        if point.negative_gsum and not point.negative_bucket:
            raise ParseError(where, f"gauge histogram {self.family!r} has a negative _gsum but no negative bucket")


def _om_line_problem(line: str) -> str:
    if line[0] in " \t":
        return "lines must not start with whitespace"
    if line.startswith("<"):
        return "expected a metric sample, got markup (is this an HTML page?)"
    if re.match(_METRIC_NAME, line) is None:
        return f"expected a metric name, got {_preview(line)}"
    return f"invalid sample line {_preview(line)}"
