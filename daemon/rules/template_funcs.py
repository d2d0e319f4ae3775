"""Prometheus' template functions (``template/template.go``), with its output formats and errors.

``humanize`` and friends use ``%.4g``; timestamps print as Go's ``time.Time`` does
(``2015-06-23 13:19:44.128 +0000 UTC``); regexes are RE2, unanchored, as Go's ``regexp``.
Functions that need the evaluation (``query``, ``externalURL``, ``now``) come from
``context_functions``; the rest are constants.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote_plus, urlsplit

from daemon.config.duration import parse_duration
from daemon.re2 import RegexError, translate_re2
from daemon.rules.template_exec import Function
from daemon.rules.template_fmt import format_float, go_quote
from daemon.rules.template_values import (
    AnyMap,
    GoDuration,
    GoError,
    GoTime,
    Html,
    QueryResult,
    Sample,
    go_type,
)

_SI_UP = ("k", "M", "G", "T", "P", "E", "Z", "Y")
_SI_DOWN = ("m", "u", "n", "p", "f", "a", "z", "y")
_IEC = ("ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi")
_GO_FLOAT = re.compile(
    r"[+-]?(?:(?:\d+(?:_\d+)*)?\.?\d*(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F_]*\.?[0-9a-fA-F_]*[pP][+-]?\d+"
    r"|inf|infinity|nan)",
    re.IGNORECASE,
)
_MAX_INT64_F = 2.0**63


class QuerySample(Protocol):
    """One element of a query result: its labels (``__name__`` included) and value."""

    @property
    def labels(self) -> Mapping[str, str]: ...

    @property
    def value(self) -> float: ...


QueryFunc = Callable[[str], Sequence[QuerySample]]
"""Runs a PromQL instant query at the evaluation time; raises to fail the template."""


def parse_go_float(text: str) -> float:
    """strconv.ParseFloat(text, 64), with its error messages."""
    if not text or not _GO_FLOAT.fullmatch(text) or text in ("+", "-", ".", "+.", "-."):
        raise GoError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax")
    body = text.lstrip("+-")
    if "_" in text and body[:2].lower() != "0x":
        raise GoError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax")
    clean = text.replace("_", "")
    try:
        value = float.fromhex(clean) if body[:2].lower() == "0x" else float(clean)
    except (ValueError, OverflowError):
        if body[:2].lower() == "0x":
            raise GoError(f"strconv.ParseFloat: parsing {go_quote(text)}: invalid syntax") from None
        raise GoError(f"strconv.ParseFloat: parsing {go_quote(text)}: value out of range") from None
    if math.isinf(value) and body.lower() not in ("inf", "infinity"):
        raise GoError(f"strconv.ParseFloat: parsing {go_quote(text)}: value out of range")
    return value


def convert_to_float(value: Any) -> float:
    """Prometheus' ConvertToFloat: numbers, numeric strings and durations (as seconds)."""
    if isinstance(value, float):
        return value
    if isinstance(value, str):
        return parse_go_float(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, GoDuration):
        return value.nanos / 1e9
    raise GoError(f"can't convert {go_type(value)} to float")


def _g4(value: float) -> str:
    return format_float(value, "g", 4)


def humanize(arg: Any) -> str:
    """SI-prefixed with 4 significant digits: ``1.235M``, ``120m``."""
    v = convert_to_float(arg)
    if v == 0 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    if abs(v) >= 1:
        for p in _SI_UP:
            if abs(v) < 1000:
                break
            prefix, v = p, v / 1000
        return _g4(v) + prefix
    for p in _SI_DOWN:
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return _g4(v) + prefix


def humanize1024(arg: Any) -> str:
    """Binary-prefixed with 4 significant digits: ``1Mi``, ``1.177Mi``."""
    v = convert_to_float(arg)
    if abs(v) <= 1 or math.isnan(v) or math.isinf(v):
        return _g4(v)
    prefix = ""
    for p in _IEC:
        if abs(v) < 1024:
            break
        prefix, v = p, v / 1024
    return _g4(v) + prefix


def humanize_duration(arg: Any) -> str:
    """Seconds as ``1d 2h 3m 4s``, ``1.234s`` or ``100ms``."""
    v = convert_to_float(arg)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    if v == 0:
        return _g4(v) + "s"
    if abs(v) >= 1:
        sign = ""
        if v < 0:
            sign, v = "-", -v
        total = int(v) if v < _MAX_INT64_F else 2**63 - 1
        seconds, minutes = total % 60, total // 60 % 60
        hours, days = total // 3600 % 24, total // 86400
        if days:
            return f"{sign}{days}d {hours}h {minutes}m {seconds}s"
        if hours:
            return f"{sign}{hours}h {minutes}m {seconds}s"
        if minutes:
            return f"{sign}{minutes}m {seconds}s"
        return f"{sign}{_g4(v)}s"
    prefix = ""
    for p in _SI_DOWN:
        if abs(v) >= 1:
            break
        prefix, v = p, v * 1000
    return f"{_g4(v)}{prefix}s"


def humanize_percentage(arg: Any) -> str:
    """A ratio as a percentage with 4 significant digits: ``12.35%``."""
    return _g4(convert_to_float(arg) * 100) + "%"


def float_to_time(v: float) -> GoTime:
    """Seconds since the epoch as a time, at Prometheus' millisecond precision."""
    if math.isnan(v) or math.isinf(v):
        raise GoError("value is NaN or Inf")
    ts = v * 1e9
    if ts > _MAX_INT64_F or ts < -_MAX_INT64_F:
        raise GoError(f"{format_float(v)} cannot be represented as a nanoseconds timestamp since it overflows int64")
    nanos = int(ts)
    # model.TimeFromUnixNano divides to milliseconds, truncating toward zero.
    millis = nanos // 1_000_000 if nanos >= 0 else -(-nanos // 1_000_000)
    return GoTime(millis * 1_000_000)


def humanize_timestamp(arg: Any) -> str:
    """A Unix timestamp in seconds as Go prints a UTC time."""
    v = convert_to_float(arg)
    if math.isnan(v) or math.isinf(v):
        return _g4(v)
    return str(float_to_time(v))


def to_time(arg: Any) -> GoTime:
    """``toTime``: a Unix timestamp in seconds as a ``*time.Time``."""
    return float_to_time(convert_to_float(arg))


def to_duration(arg: Any) -> GoDuration:
    """``toDuration``: seconds as a ``time.Duration``."""
    v = convert_to_float(arg)
    if math.isnan(v) or math.isinf(v):
        raise GoError("value is NaN or Inf")
    nanos = v * 1e9
    if nanos > _MAX_INT64_F or nanos < -_MAX_INT64_F:
        raise GoError(f"{format_float(v)} cannot be represented as a nanoseconds duration since it overflows int64")
    return GoDuration(int(nanos))


def parse_duration_seconds(text: str) -> float:
    """``parseDuration``: a Prometheus duration (``1h2m10ms``, optionally negative) in seconds."""
    negative = text.startswith("-")
    try:
        seconds = parse_duration(text[1:] if negative else text)
    except ValueError as exc:
        raise GoError(str(exc) if not negative else f"not a valid duration string: {go_quote(text)}") from None
    return -seconds if negative else seconds


def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(translate_re2(pattern), re.ASCII)
    except RegexError as exc:
        raise GoError(str(exc)) from None
    except re.error as exc:
        raise GoError(f"error parsing regexp: {exc.msg}: `{pattern}`") from None


def _must_compile(pattern: str) -> re.Pattern[str]:
    try:
        return _compile(pattern)
    except GoError as exc:
        quoted = f"`{pattern}`" if "`" not in pattern and pattern.isprintable() else go_quote(pattern)
        # regexp.MustCompile panics; the template reports the panic's text.
        raise GoError(f"regexp: Compile({quoted}): {exc}") from None


_GROUP_REF = re.compile(r"\$(?:\$|\{(\w*)\}|(\w+))")


def _expand_replacement(template: str, match: re.Match[str]) -> str:
    """Go's Regexp.Expand: ``$1``, ``${1}``, ``$name``, ``$$``; unknown groups are empty."""

    def group(ref: re.Match[str]) -> str:
        if ref.group(0) == "$$":
            return "$"
        name = ref.group(1) if ref.group(1) is not None else ref.group(2)
        if not name:
            # Go treats a malformed reference ("${}") as literal text.
            return ref.group(0)
        try:
            found = match.group(int(name) if name.isdigit() else name)
        except IndexError:
            return ""
        return found or ""

    return _GROUP_REF.sub(group, template)


def re_replace_all(pattern: str, repl: str, text: str) -> str:
    """``reReplaceAll``: Go's ReplaceAllString, unanchored."""
    regex = _must_compile(pattern)
    return regex.sub(lambda m: _expand_replacement(repl, m), text)


def match(pattern: str, text: str) -> bool:
    """``match``: whether the RE2 ``pattern`` matches anywhere in ``text``."""
    return _compile(pattern).search(text) is not None


def title(text: str) -> str:
    """Upper-case the first letter of each word, leaving the rest (``aa bb CC`` -> ``Aa Bb CC``)."""
    out: list[str] = []
    in_word = False
    for i, ch in enumerate(text):
        if ch.isalpha() or ch.isdigit():
            out.append(ch if in_word else _upper(ch))
            in_word = True
        elif ch in "'’" and in_word and i + 1 < len(text) and text[i + 1].isalpha():
            out.append(ch)
        else:
            out.append(ch)
            in_word = ch == "_"
    return "".join(out)


def _upper(ch: str) -> str:
    up = ch.title()
    return up if len(up) == 1 else ch


def to_upper(text: str) -> str:
    """strings.ToUpper: per-rune upper case (no ``ß`` -> ``SS`` expansion)."""
    if text.isascii():
        return text.upper()
    return "".join(u if len(u := c.upper()) == 1 else c for c in text)


def to_lower(text: str) -> str:
    """strings.ToLower: per-rune lower case."""
    if text.isascii():
        return text.lower()
    return "".join(low if len(low := c.lower()) == 1 else c for c in text)


def split_host_port(hostport: str) -> tuple[str, str]:
    """net.SplitHostPort; raises ``ValueError`` for a value without a port."""
    i = hostport.rfind(":")
    if i < 0:
        raise ValueError("missing port in address")
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise ValueError("missing ']' in address")
        if end + 1 == len(hostport):
            raise ValueError("missing port in address")
        if end + 1 != i:
            raise ValueError("too many colons in address" if hostport[end + 1] == ":" else "missing port in address")
        host, j, k = hostport[1:end], 1, end + 1
    else:
        host, j, k = hostport[:i], 0, 0
        if ":" in host:
            raise ValueError("too many colons in address")
    if "[" in hostport[j:] or "]" in hostport[k:]:
        raise ValueError("unexpected bracket in address")
    return host, hostport[i + 1 :]


def strip_port(hostport: str) -> str:
    """``stripPort``: the host of ``host:port``, or the value unchanged."""
    try:
        return split_host_port(hostport)[0]
    except ValueError:
        return hostport


def _is_ip(host: str) -> bool:
    if "%" in host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def strip_domain(hostport: str) -> str:
    """``stripDomain``: the first label of a host name, keeping any port; IPs unchanged."""
    try:
        host, port = split_host_port(hostport)
    except ValueError:
        host, port = hostport, ""
    if _is_ip(host):
        return hostport
    host = host.split(".")[0]
    if port:
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return host


def graph_link(expr: str) -> str:
    """``graphLink``: the Prometheus UI path graphing ``expr``."""
    return f"/graph?g0.expr={quote_plus(expr, safe='')}&g0.tab=0"


def table_link(expr: str) -> str:
    """``tableLink``: the Prometheus UI path tabulating ``expr``."""
    return f"/graph?g0.expr={quote_plus(expr, safe='')}&g0.tab=1"


def first(result: QueryResult | None) -> Sample:
    """``first``: the first sample of a query result."""
    if not result:
        raise GoError("first() called on vector with no elements")
    return result[0]


def _sample(s: Sample | None) -> Sample:
    if s is None:
        raise GoError("runtime error: invalid memory address or nil pointer dereference")
    return s


def label(name: str, s: Sample | None) -> str:
    """``label``: a label of a sample, ``""`` when absent."""
    return _sample(s).fields["Labels"].get(name, "")


def value(s: Sample | None) -> Any:
    """``value``: the value of a sample."""
    return _sample(s).fields["Value"]


def strvalue(s: Sample | None) -> str:
    """``strvalue``: the ``__value__`` label of a sample."""
    return _sample(s).fields["Labels"].get("__value__", "")


def sort_by_label(name: str, result: QueryResult | None) -> QueryResult:
    """``sortByLabel``: the samples stably sorted by one label's value."""
    if result is None:
        return QueryResult()
    return QueryResult(sorted(result, key=lambda s: s.fields["Labels"].get(name, "")))


def args(*values: Any) -> AnyMap:
    """``args``: ``arg0``, ``arg1``, ... for passing several values to a defined template."""
    return AnyMap({f"arg{i}": v for i, v in enumerate(values)})


def safe_html(text: str) -> Html:
    """``safeHtml``: text marked as HTML (printed unchanged in text templates)."""
    return Html(text)


STATIC_FUNCTIONS: Mapping[str, Function] = {
    "first": Function(first, ("template.queryResult",)),
    "label": Function(label, ("string", "*template.sample")),
    "value": Function(value, ("*template.sample",)),
    "strvalue": Function(strvalue, ("*template.sample",)),
    "args": Function(args, ("any",), variadic=True),
    "reReplaceAll": Function(re_replace_all, ("string", "string", "string")),
    "safeHtml": Function(safe_html, ("string",)),
    "match": Function(match, ("string", "string")),
    "title": Function(title, ("string",)),
    "toUpper": Function(to_upper, ("string",)),
    "toLower": Function(to_lower, ("string",)),
    "graphLink": Function(graph_link, ("string",)),
    "tableLink": Function(table_link, ("string",)),
    "sortByLabel": Function(sort_by_label, ("string", "template.queryResult")),
    "stripPort": Function(strip_port, ("string",)),
    "stripDomain": Function(strip_domain, ("string",)),
    "humanize": Function(humanize, ("any",)),
    "humanize1024": Function(humanize1024, ("any",)),
    "humanizeDuration": Function(humanize_duration, ("any",)),
    "humanizePercentage": Function(humanize_percentage, ("any",)),
    "humanizeTimestamp": Function(humanize_timestamp, ("any",)),
    "toTime": Function(to_time, ("any",)),
    "toDuration": Function(to_duration, ("any",)),
    "parseDuration": Function(parse_duration_seconds, ("string",)),
}
"""Prometheus' functions that do not depend on the evaluation."""

CONTEXT_FUNCTION_NAMES = ("query", "pathPrefix", "externalURL", "now")


def context_functions(query: QueryFunc | None, external_url: str, timestamp: float | None) -> dict[str, Function]:
    """``query``, ``pathPrefix``, ``externalURL`` and ``now`` bound to one evaluation."""

    def run_query(expr: str) -> QueryResult:
        if query is None:
            raise GoError("no query function is available to templates here")
        return QueryResult(Sample.of(dict(s.labels), s.value) for s in query(expr))

    def now() -> float:
        if timestamp is None:
            raise GoError("no evaluation time is available to templates here")
        return float(timestamp)

    return {
        "query": Function(run_query, ("string",)),
        "pathPrefix": Function(lambda: urlsplit(external_url).path, ()),
        "externalURL": Function(lambda: external_url, ()),
        "now": Function(now, ()),
    }
