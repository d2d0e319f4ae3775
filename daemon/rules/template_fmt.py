"""Go's ``fmt`` and ``strconv`` output for template values: ``{{ $value }}``, ``printf``, ``print``.

Notifications and promtool test expectations show these strings, so they follow Go exactly where
rules use them: floats print as strconv's shortest ``'g'`` (``1e+06``, ``0.1``, ``+Inf``), ``%d``
of a float64 is ``%!d(float64=3)``, maps print sorted as ``map[k:v]``.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from daemon.rules.template_values import (
    GoDuration,
    GoStruct,
    GoTime,
    Html,
    go_type,
)

_FLAGS = "+-# 0"
_STRINGERS = (GoTime, GoDuration, Html)


def shortest_digits(value: float) -> tuple[str, int]:
    """The shortest round-tripping decimal digits of a finite ``value > 0`` and the position of
    the decimal point (``0.d1d2... * 10**dp``), as strconv computes them."""
    sign, digits, exp = Decimal(repr(value)).as_tuple()
    text = "".join(map(str, digits))
    stripped = text.rstrip("0")
    assert isinstance(exp, int)
    exp += len(text) - len(stripped)
    return stripped, len(stripped) + exp


def format_float(value: float, verb: str = "g", prec: int = -1) -> str:
    """strconv.FormatFloat with fmt's sign rules: ``+Inf``, ``-Inf``, ``NaN``; ``prec=-1`` is shortest."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if verb in "eEfF" and prec < 0:
        prec = 6
    if prec >= 0:
        text = f"%.{prec}{verb}" % value
        return text
    # Shortest 'g': Python's repr picks the same digits as Go's but switches to exponent
    # notation at different magnitudes, so lay the digits out as strconv does.
    neg = math.copysign(1.0, value) < 0
    mag = abs(value)
    if mag == 0:
        return "-0" if neg else "0"
    digits, dp = shortest_digits(mag)
    exp = dp - 1
    if exp < -4 or exp >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        text = f"{mant}{'E' if verb == 'G' else 'e'}{'-' if exp < 0 else '+'}{abs(exp):02d}"
    elif dp <= 0:
        text = "0." + "0" * -dp + digits
    elif dp >= len(digits):
        text = digits + "0" * (dp - len(digits))
    else:
        text = digits[:dp] + "." + digits[dp:]
    return "-" + text if neg else text


def go_quote(text: str, *, ascii_only: bool = False) -> str:
    """strconv.Quote (``ascii_only``: QuoteToASCII)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable() and not (ascii_only and code > 0x7E):
            out.append(ch)
        elif ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def sprint_value(value: Any) -> str:
    """``%v`` of one value, as ``fmt.Sprint`` prints it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if value is None:
        return "<nil>"
    if isinstance(value, _STRINGERS):
        return str(value)
    return _composite(value, lambda v: sprint_value(v), plus=False)


def _composite(value: Any, fmt_elem: Any, *, plus: bool) -> str:
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: _sort_key(kv[0]))
        return "map[" + " ".join(f"{fmt_elem(k)}:{fmt_elem(v)}" for k, v in items) + "]"
    if isinstance(value, list):
        return "[" + " ".join(fmt_elem(v) for v in value) + "]"
    if isinstance(value, GoStruct):
        parts = (f"{k}:{fmt_elem(v)}" if plus else fmt_elem(v) for k, v in value.fields.items())
        return ("&{" if value.pointer else "{") + " ".join(parts) + "}"
    return str(value)


def _sort_key(key: Any) -> tuple[int, Any]:
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return (0, key)
    return (1, str(key))


def sprint(args: list[Any]) -> str:
    """fmt.Sprint: a space between operands when neither side is a string."""
    out: list[str] = []
    prev_string = True
    for i, arg in enumerate(args):
        is_string = isinstance(arg, str)
        if i > 0 and not is_string and not prev_string:
            out.append(" ")
        out.append(sprint_value(arg))
        prev_string = is_string
    return "".join(out)


def sprintln(args: list[Any]) -> str:
    """fmt.Sprintln: operands always separated by spaces, then a newline."""
    return " ".join(sprint_value(a) for a in args) + "\n"


class _Spec:
    __slots__ = ("plus", "minus", "sharp", "space", "zero", "width", "prec")

    def __init__(self) -> None:
        self.plus = self.minus = self.sharp = self.space = self.zero = False
        self.width: int | None = None
        self.prec: int | None = None


def sprintf(fmt: str, args: list[Any]) -> str:
    """fmt.Sprintf for the verbs templates use, with Go's ``%!verb(type=value)`` complaints."""
    out: list[str] = []
    i, n, argnum = 0, len(fmt), 0
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        spec = _Spec()
        while i < n and fmt[i] in _FLAGS:
            flag = fmt[i]
            if flag == "+":
                spec.plus = True
            elif flag == "-":
                spec.minus = True
            elif flag == "#":
                spec.sharp = True
            elif flag == " ":
                spec.space = True
            else:
                spec.zero = True
            i += 1
        if i < n and fmt[i] == "*":
            i += 1
            if argnum < len(args) and isinstance(args[argnum], int) and not isinstance(args[argnum], bool):
                spec.width = args[argnum]
                if spec.width < 0:
                    spec.minus, spec.width = True, -spec.width
            else:
                out.append("%!(BADWIDTH)")
            argnum += 1
        else:
            start = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > start:
                spec.width = int(fmt[start:i])
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                i += 1
                if argnum < len(args) and isinstance(args[argnum], int) and not isinstance(args[argnum], bool):
                    spec.prec = args[argnum] if args[argnum] >= 0 else None
                else:
                    out.append("%!(BADPREC)")
                argnum += 1
            else:
                start = i
                while i < n and fmt[i].isdigit():
                    i += 1
                spec.prec = int(fmt[start:i]) if i > start else 0
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argnum >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format_arg(args[argnum], verb, spec))
        argnum += 1
    if argnum < len(args):
        extra = ", ".join(
            "<nil>" if a is None else f"{go_type(a)}={sprint_value(a)}" for a in args[argnum:]
        )
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _bad_verb(arg: Any, verb: str) -> str:
    if arg is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({go_type(arg)}={sprint_value(arg)})"


def _pad(text: str, spec: _Spec, *, numeric: bool = False) -> str:
    width = spec.width
    if width is None or len(text) >= width:
        return text
    fill = width - len(text)
    if spec.minus:
        return text + " " * fill
    if spec.zero:
        if numeric and text[:1] in "+- ":
            return text[0] + "0" * fill + text[1:]
        return "0" * fill + text
    return " " * fill + text


def _format_arg(arg: Any, verb: str, spec: _Spec) -> str:
    if verb == "T":
        return _pad(go_type(arg) if arg is not None else "<nil>", spec)
    if arg is None:
        return _pad("<nil>", spec) if verb == "v" else _bad_verb(arg, verb)
    if isinstance(arg, bool):
        if verb in "vt":
            return _pad("true" if arg else "false", spec)
        return _bad_verb(arg, verb)
    if isinstance(arg, int):
        return _format_int(arg, verb, spec)
    if isinstance(arg, float):
        return _format_float_verb(arg, verb, spec)
    if isinstance(arg, _STRINGERS) and verb in "vsqxX":
        arg = str(arg)
    if isinstance(arg, str):
        return _format_str(arg, verb, spec)
    if isinstance(arg, GoDuration) and verb == "d":
        return _format_int(arg.nanos, verb, spec)
    if isinstance(arg, (dict, list, GoStruct)):
        return _composite(arg, lambda v: _format_arg(v, verb, _Spec()), plus=spec.plus)
    return _bad_verb(arg, verb)


def _format_int(value: int, verb: str, spec: _Spec) -> str:
    if verb in "vd":
        digits = str(abs(value))
    elif verb == "b":
        digits = format(abs(value), "b")
    elif verb in "oO":
        digits = format(abs(value), "o")
        if verb == "O":
            digits = "0o" + digits
        elif spec.sharp:
            digits = "0" + digits
    elif verb in "xX":
        digits = format(abs(value), "x" if verb == "x" else "X")
        if spec.sharp:
            digits = ("0x" if verb == "x" else "0X") + digits
    elif verb == "c":
        return _pad(_rune(value), spec)
    elif verb == "q":
        return _pad("'" + go_quote(_rune(value))[1:-1].replace("'", "\\'").replace('\\"', '"') + "'", spec)
    elif verb == "U":
        return _pad(f"U+{value:04X}", spec)
    else:
        return _bad_verb(value, verb)
    if spec.prec is not None:
        digits = digits.rjust(spec.prec, "0")
    sign = "-" if value < 0 else "+" if spec.plus else " " if spec.space else ""
    if spec.prec is not None:
        # Go ignores the 0 flag when a precision is given.
        spec.zero = False
    return _pad(sign + digits, spec, numeric=True)


def _rune(value: int) -> str:
    return chr(value) if 0 <= value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF else "\ufffd"


def _format_float_verb(value: float, verb: str, spec: _Spec) -> str:
    if verb == "v":
        verb = "g"
    if verb not in "eEfFgG":
        return _bad_verb(value, verb)
    prec = spec.prec if spec.prec is not None else (-1 if verb in "gG" else 6)
    text = format_float(value, verb, prec)
    if math.isnan(value) or math.isinf(value):
        if math.isnan(value) and (spec.plus or spec.space):
            text = ("+" if spec.plus else " ") + text
        elif math.isinf(value) and value > 0 and spec.space and not spec.plus:
            text = " Inf"
        saved, spec.zero = spec.zero, False
        padded = _pad(text, spec)
        spec.zero = saved
        return padded
    if not text.startswith("-"):
        if spec.plus:
            text = "+" + text
        elif spec.space:
            text = " " + text
    return _pad(text, spec, numeric=True)


def _format_str(value: str, verb: str, spec: _Spec) -> str:
    if spec.prec is not None:
        value = value[: spec.prec]
    if verb in "vs":
        return _pad(value, spec)
    if verb == "q":
        if spec.sharp and "`" not in value and all(c == "\t" or c.isprintable() for c in value):
            return _pad("`" + value + "`", spec)
        return _pad(go_quote(value, ascii_only=spec.plus), spec)
    if verb in "xX":
        hexed = value.encode("utf-8", "surrogatepass").hex()
        return _pad(hexed.upper() if verb == "X" else hexed, spec)
    return _bad_verb(value, verb)


# Go's reference-time layout elements, longest alternatives first where they share a prefix.
_LAYOUT = re.compile(
    r"January|Jan|Monday|Mon|MST|2006|002|0[1-6]|15|1|__2|_2(?!006)|2|3|4|5|PM|pm"
    r"|-070000|-07:00:00|-0700|-07:00|-07|Z070000|Z07:00:00|Z0700|Z07:00|Z07|[.,](?:0+|9+)(?![0-9])"
)
_MONTHS = (
    "January February March April May June July August September October November December"
).split()
_DAYS = "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()


def format_go_time(t: GoTime, layout: str) -> str:
    """time.Time.Format for a UTC time, with Go's reference-time layout (``2006-01-02 15:04:05``)."""
    dt = t.datetime()
    nanos = t.nanos % 1_000_000_000
    hour12 = dt.hour % 12 or 12

    def element(match: re.Match[str]) -> str:
        tok = match.group(0)
        if tok[0] in ".,":
            digits = f"{nanos:09d}"[: len(tok) - 1]
            if tok[1] == "9":
                digits = digits.rstrip("0")
                return tok[0] + digits if digits else ""
            return tok[0] + digits
        if tok[0] in "-Z":
            if tok[0] == "Z":
                return "Z"
            return {"-070000": "+000000", "-07:00:00": "+00:00:00", "-0700": "+0000", "-07:00": "+00:00"}.get(
                tok, "+00"
            )
        return {
            "January": _MONTHS[dt.month - 1],
            "Jan": _MONTHS[dt.month - 1][:3],
            "Monday": _DAYS[dt.weekday()],
            "Mon": _DAYS[dt.weekday()][:3],
            "MST": "UTC",
            "2006": f"{dt.year:04d}",
            "002": f"{dt.timetuple().tm_yday:03d}",
            "01": f"{dt.month:02d}",
            "02": f"{dt.day:02d}",
            "03": f"{hour12:02d}",
            "04": f"{dt.minute:02d}",
            "05": f"{dt.second:02d}",
            "06": f"{dt.year % 100:02d}",
            "15": f"{dt.hour:02d}",
            "1": str(dt.month),
            "__2": f"{dt.timetuple().tm_yday:3d}",
            "_2": f"{dt.day:2d}",
            "2": str(dt.day),
            "3": str(hour12),
            "4": str(dt.minute),
            "5": str(dt.second),
            "PM": "PM" if dt.hour >= 12 else "AM",
            "pm": "pm" if dt.hour >= 12 else "am",
        }[tok]

    return _LAYOUT.sub(element, layout)
