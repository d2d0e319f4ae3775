"""RE2 patterns (Prometheus' regex dialect) translated into Python's ``re``.

Prometheus anchors relabel and matcher regexes as ``^(?s:pattern)$``; ``compile_re2`` does the
same. RE2 syntax that Python lacks is rewritten (inline flags mid-pattern, ``(?<name>``, ``\\z``,
``\\Q..\\E``, POSIX classes, ``\\x{...}``); what RE2 forbids (lookaround, backreferences,
possessive repeats) or Python cannot express (``\\p{...}`` classes) is rejected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


class RegexError(ValueError):
    """A pattern that is not valid RE2, or uses RE2 syntax that Python's ``re`` cannot express."""


_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": r"\x00-\x7f",
    "blank": r"\t ",
    "cntrl": r"\x00-\x1f\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": r"!-/:-@\[-`{-~",
    "space": r"\t\n\v\f\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}
_FLAG_GROUP = re.compile(r"\(\?([a-zA-Z]*)(?:-([a-zA-Z]*))?([:)])")
_NAMED_GROUP = re.compile(r"\(\?P?<(\w+)>")
_REPEAT = re.compile(r"\{(\d+)(,(\d*))?\}")
_MAX_REPEAT = 1000


@dataclass
class _Group:
    multiline: bool
    # Scoped groups opened for inline flags such as "(?i)", closed with this group.
    inline: list[str] = field(default_factory=list)


def compile_re2(pattern: str) -> re.Pattern[str]:
    """Compile an RE2 pattern, anchored at both ends as Prometheus does (``^(?s:pattern)$``).

    Use ``fullmatch`` on the result. ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII as in RE2; so is
    case folding under ``(?i)`` (a difference from RE2 only for non-ASCII letters).
    """
    translated = translate_re2(pattern)
    try:
        return re.compile(f"(?s:{translated})", re.ASCII)
    except re.error as exc:
        raise RegexError(f"error parsing regexp: {exc.msg}: `{pattern}`") from None
    except (OverflowError, RecursionError):
        raise RegexError(f"error parsing regexp: expression too large: `{pattern}`") from None


def translate_re2(pattern: str) -> str:
    """Rewrite RE2 syntax into Python ``re`` syntax, rejecting what RE2 forbids or Python lacks."""
    out: list[str] = []
    groups = [_Group(multiline=False)]
    i = 0
    can_repeat = False  # the previous item may take a repetition operator
    after_repeat = False  # the previous item is a repetition (so only a lazy '?' may follow)
    lazy = False  # ... and that '?' has been given already
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            text, i = _escape(pattern, i, in_class=False)
            out.append(text)
            can_repeat, after_repeat = bool(text), False
            continue
        if char == "[":
            text, i = _char_class(pattern, i)
            out.append(text)
            can_repeat, after_repeat = True, False
            continue
        if char == "(":
            text, i = _open_group(pattern, i, groups)
            out.append(text)
            can_repeat = after_repeat = False
            continue
        if char == ")":
            if len(groups) == 1:
                raise RegexError(f"error parsing regexp: unexpected ): `{pattern}`")
            group = groups.pop()
            out.append(")" * len(group.inline) + ")")
            can_repeat, after_repeat = True, False
        elif char == "|":
            inline = groups[-1].inline
            out.append(")" * len(inline) + "|" + "".join(inline))
            can_repeat = after_repeat = False
        elif char in "*+?" or (char == "{" and _REPEAT.match(pattern, i)):
            if char == "{":
                repeat = _REPEAT.match(pattern, i)
                assert repeat is not None
                _check_repeat(repeat, pattern)
                operator, i = repeat.group(0), repeat.end()
            else:
                operator, i = char, i + 1
            if after_repeat:
                if operator != "?" or lazy:
                    raise RegexError(f"error parsing regexp: invalid nested repetition operator: `{pattern}`")
                out[-1] += "?"
                lazy = True
                continue
            if not can_repeat:
                raise RegexError(f"error parsing regexp: missing argument to repetition operator: `{pattern}`")
            out.append(operator)
            can_repeat, after_repeat, lazy = False, True, False
            continue
        elif char == "{":
            out.append(r"\{")
            can_repeat, after_repeat = True, False
        elif char == "$":
            # Python's bare $ also matches before a final newline; RE2's only at the very end.
            out.append("$" if groups[-1].multiline else r"\Z")
            can_repeat = after_repeat = False
        elif char == "^":
            out.append("^")
            can_repeat = after_repeat = False
        else:
            out.append(char)
            can_repeat, after_repeat = True, False
        i += 1
    if len(groups) > 1:
        raise RegexError(f"error parsing regexp: missing closing ): `{pattern}`")
    out.append(")" * len(groups[0].inline))
    return "".join(out)


def _check_repeat(repeat: re.Match[str], pattern: str) -> None:
    low = int(repeat.group(1))
    high = low if repeat.group(2) is None else (int(repeat.group(3)) if repeat.group(3) else None)
    if low > _MAX_REPEAT or (high is not None and (high > _MAX_REPEAT or high < low)):
        raise RegexError(f"error parsing regexp: invalid repeat count: `{pattern}`")


def _open_group(pattern: str, i: int, groups: list[_Group]) -> tuple[str, int]:
    current = groups[-1]
    if not pattern.startswith("(?", i):
        groups.append(_Group(current.multiline))
        return "(", i + 1
    named = _NAMED_GROUP.match(pattern, i)
    if named:
        groups.append(_Group(current.multiline))
        return f"(?P<{named.group(1)}>", named.end()
    for prefix, what in (
        ("(?=", "lookahead assertions"),
        ("(?!", "lookahead assertions"),
        ("(?<=", "lookbehind assertions"),
        ("(?<!", "lookbehind assertions"),
        ("(?P=", "backreferences"),
        ("(?>", "atomic groups"),
        ("(?(", "conditionals"),
        ("(?#", "comments"),
    ):
        if pattern.startswith(prefix, i):
            raise RegexError(f"error parsing regexp: {what} are not supported (RE2 syntax): `{pattern}`")
    flags = _FLAG_GROUP.match(pattern, i)
    if flags is None or not (flags.group(1) or flags.group(2) is not None or flags.group(3) == ":"):
        raise RegexError(f"error parsing regexp: invalid or unsupported Perl syntax: `{pattern}`")
    on, off = flags.group(1), flags.group(2) or ""
    for letter in on + off:
        if letter == "U":
            raise RegexError(f"error parsing regexp: the ungreedy flag U is not supported: `{pattern}`")
        if letter not in "ims" or (on + off).count(letter) > 1:
            raise RegexError(f"error parsing regexp: invalid or unsupported Perl syntax: `{pattern}`")
    if flags.group(2) is not None and not off:
        raise RegexError(f"error parsing regexp: invalid or unsupported Perl syntax: `{pattern}`")
    multiline = current.multiline
    if "m" in on:
        multiline = True
    elif "m" in off:
        multiline = False
    scoped = "(?" + on + (f"-{off}" if off else "") + ":"
    if flags.group(3) == ":":
        groups.append(_Group(multiline))
        return scoped, flags.end()
    # "(?i)" applies to the rest of the enclosing group: Python 3.11 only has scoped flags.
    current.inline.append(scoped)
    current.multiline = multiline
    return scoped, flags.end()


def _escape(pattern: str, i: int, *, in_class: bool) -> tuple[str, int]:
    if i + 1 >= len(pattern):
        raise RegexError(f"error parsing regexp: trailing backslash at end of expression: `{pattern}`")
    char = pattern[i + 1]
    if char == "Q":
        end = pattern.find(r"\E", i + 2)
        literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
        after = len(pattern) if end < 0 else end + 2
        return re.escape(literal), after
    if char in "pP":
        raise RegexError(f"error parsing regexp: Unicode classes \\{char} are not supported: `{pattern}`")
    if char in "CZ":
        raise RegexError(f"error parsing regexp: invalid escape sequence: \\{char}: `{pattern}`")
    if char == "z":
        if in_class:
            raise RegexError(f"error parsing regexp: invalid escape sequence: \\z: `{pattern}`")
        return r"\Z", i + 2
    if char == "x":
        braced = re.compile(r"\{([0-9a-fA-F]{1,8})\}").match(pattern, i + 2)
        if braced:
            code = int(braced.group(1), 16)
            if code > 0x10FFFF:
                raise RegexError(f"error parsing regexp: invalid escape sequence: `{pattern}`")
            return f"\\U{code:08x}", braced.end()
        return pattern[i : i + 4], i + 4
    if char.isdigit():
        octal = re.compile(r"[0-7]{1,3}").match(pattern, i + 1)
        # RE2: \0 starts an octal escape, \1..\7 only when another octal digit follows.
        if octal and (char == "0" or len(octal.group(0)) > 1):
            return f"\\x{int(octal.group(0), 8):02x}", octal.end()
        raise RegexError(f"error parsing regexp: backreferences are not supported: \\{char}: `{pattern}`")
    return pattern[i : i + 2], i + 2


def _char_class(pattern: str, i: int) -> tuple[str, int]:
    out = ["["]
    i += 1
    if i < len(pattern) and pattern[i] == "^":
        out.append("^")
        i += 1
    first = True
    while i < len(pattern):
        char = pattern[i]
        if char == "]" and not first:
            out.append("]")
            return "".join(out), i + 1
        first = False
        if char == "[" and pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            name = pattern[i + 2 : end] if end >= 0 else ""
            if name.startswith("^") and name[1:] in _POSIX_CLASSES:
                raise RegexError(f"error parsing regexp: negated POSIX classes are not supported: `{pattern}`")
            if name in _POSIX_CLASSES:
                out.append(_POSIX_CLASSES[name])
                i = end + 2
                continue
            raise RegexError(f"error parsing regexp: invalid character class range: `{pattern}`")
        if char == "\\":
            text, i = _escape(pattern, i, in_class=True)
            out.append(text)
            continue
        # Escaped so that Python sees plain characters, not its future set operations.
        out.append("\\" + char if char in "[&~|" else char)
        i += 1
    raise RegexError(f"error parsing regexp: missing closing ]: `{pattern}`")


