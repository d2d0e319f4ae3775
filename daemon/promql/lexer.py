"""The PromQL lexer: turns query text into tokens, one at a time, as Prometheus' lexer does.

The lexer is context-sensitive in the same ways as Prometheus': inside ``{...}`` keywords are
plain identifiers, and inside ``[...]`` only duration-expression tokens exist. Tokens are
produced on demand, so an error further right in the text is only reported once the parser
gets there; an earlier syntax error wins, as in Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass

# Token kinds that are not keywords or punctuation; keyword tokens use the lower-cased keyword
# as their kind and punctuation/operators use their own text.
EOF = "EOF"
NUMBER = "NUMBER"
DURATION = "DURATION"
STRING = "STRING"
IDENTIFIER = "IDENTIFIER"
METRIC_IDENTIFIER = "METRIC_IDENTIFIER"

OPERATOR_KEYWORDS = frozenset({"and", "or", "unless", "atan2"})
AGGREGATOR_KEYWORDS = frozenset(
    {
        "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar", "topk", "bottomk",
        "count_values", "quantile", "limitk", "limit_ratio",
    }
)  # fmt: skip
MODIFIER_KEYWORDS = frozenset(
    {
        "offset", "smoothed", "anchored", "by", "without", "on", "ignoring", "group_left",
        "group_right", "bool",
    }
)  # fmt: skip
PREPROCESSOR_KEYWORDS = frozenset({"start", "end", "step", "range"})
KEYWORDS = OPERATOR_KEYWORDS | AGGREGATOR_KEYWORDS | MODIFIER_KEYWORDS | PREPROCESSOR_KEYWORDS
# Operator tokens, as Prometheus classifies them when describing a token in an error.
OPERATOR_TOKENS = frozenset(
    {"+", "-", "*", "/", "%", "^", "==", "!=", "<", "<=", ">", ">=", "=~", "!~", "@"}
) | OPERATOR_KEYWORDS

_DIGITS = "0123456789"
_HEX_DIGITS = "0123456789abcdefABCDEF"
_SPACE = " \t\n\r"


def _is_alpha(c: str) -> bool:
    return c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z")


def _is_alnum(c: str) -> bool:
    return _is_alpha(c) or ("0" <= c <= "9")


class ParseError(ValueError):
    """A query that is not valid PromQL.

    ``str(err)`` reads like Prometheus' own message: ``"1:15: parse error: unexpected ..."``,
    with a 1-based line and a 1-based byte column. ``pos`` is the offset in the query text
    (characters) and ``message`` the part after ``parse error: ``.
    """

    def __init__(self, text: str, pos: int, message: str) -> None:
        pos = max(0, min(pos, len(text)))
        before = text[:pos]
        line = before.count("\n") + 1
        # Prometheus counts columns in bytes of the UTF-8 text.
        column = len(before[before.rfind("\n") + 1 :].encode("utf-8", "surrogateescape")) + 1
        self.pos = pos
        self.line = line
        self.column = column
        self.message = message
        super().__init__(f"{line}:{column}: parse error: {message}")


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its text as written (quotes included), and where it starts."""

    kind: str
    text: str
    pos: int

    @property
    def end(self) -> int:
        return self.pos + len(self.text)

    def describe(self) -> str:
        """The token as Prometheus names it in ``unexpected ...`` messages."""
        kind = self.kind
        if kind == EOF:
            return "end of input"
        if kind in OPERATOR_TOKENS:
            return f"<op:{self.text.lower() if kind in OPERATOR_KEYWORDS else self.text}>"
        if kind in AGGREGATOR_KEYWORDS:
            return f"<aggr:{self.text.lower()}>"
        if kind in MODIFIER_KEYWORDS:
            return f"<{self.text.lower()}>"
        if kind in PREPROCESSOR_KEYWORDS or kind in "(){}[],:=":
            return go_quote(self.text)
        label = {
            IDENTIFIER: "identifier",
            METRIC_IDENTIFIER: "metric identifier",
            STRING: "string",
            NUMBER: "number",
            DURATION: "duration",
        }[kind]
        if kind in (IDENTIFIER, METRIC_IDENTIFIER) or len(self.text) <= 10:
            return f"{label} {go_quote(self.text)}"
        return f"{label} {go_quote(self.text[:10])}..."


class Lexer:
    """Produces the tokens of one query on demand; comments are skipped.

    Raises ``ParseError`` where Prometheus' lexer would emit an error item.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.paren_depth = 0
        self.brace_open = False
        self.bracket_open = False
        self.got_colon = False
        self.got_duration = False

    def error(self, pos: int, message: str) -> ParseError:
        return ParseError(self.text, pos, message)

    def peek_char(self, pos: int) -> str:
        return self.text[pos] if pos < len(self.text) else ""

    def next_token(self) -> Token:
        """The next token, or an ``EOF`` token at the end (and on every call after it)."""
        while True:
            if self.brace_open:
                token = self._inside_braces()
            elif self.bracket_open:
                token = self._inside_brackets()
            else:
                token = self._statement()
            if token is not None:
                return token

    def _skip_comment(self) -> None:
        end = self.text.find("\n", self.pos)
        self.pos = len(self.text) if end < 0 else end

    def _statement(self) -> Token | None:
        text = self.text
        start = self.pos
        if start >= len(text):
            if self.paren_depth != 0:
                raise self.error(start, "unclosed left parenthesis")
            return Token(EOF, "", start)
        c = text[start]
        if c == "#":
            self._skip_comment()
            return None
        if c in _SPACE:
            self.pos += 1
            return None
        nxt = self.peek_char(start + 1)
        if c in ",*/%+-^@":
            self.pos += 1
            return Token(c, c, start)
        if c == "=":
            if nxt == "=":
                self.pos += 2
                return Token("==", "==", start)
            if nxt == "~":
                raise self.error(start, f"unexpected character after '=': {go_quote_rune(nxt)}")
            self.pos += 1
            return Token("=", "=", start)
        if c == "!":
            if nxt != "=":
                raise self.error(start, f"unexpected character after '!': {go_quote_rune(nxt)}")
            self.pos += 2
            return Token("!=", "!=", start)
        if c in "<>":
            if nxt == "=":
                self.pos += 2
                return Token(c + "=", c + "=", start)
            self.pos += 1
            return Token(c, c, start)
        if ("0" <= c <= "9") or (c == "." and "0" <= nxt <= "9" and nxt != ""):
            return self._number_or_duration()
        if c in "\"'":
            return self._string(c)
        if c == "`":
            return self._raw_string()
        if _is_alpha(c) or c == ":":
            return self._keyword_or_identifier()
        if c == "(":
            self.pos += 1
            self.paren_depth += 1
            return Token("(", "(", start)
        if c == ")":
            self.pos += 1
            self.paren_depth -= 1
            if self.paren_depth < 0:
                raise self.error(self.pos, "unexpected right parenthesis ')'")
            return Token(")", ")", start)
        if c == "{":
            self.pos += 1
            self.brace_open = True
            return Token("{", "{", start)
        if c == "[":
            self.pos += 1
            self.got_colon = False
            self.got_duration = False
            self.bracket_open = True
            while self.peek_char(self.pos) in _SPACE and self.pos < len(text):
                self.pos += 1
            return Token("[", "[", start)
        if c == "]":
            raise self.error(start, "unexpected right bracket ']'")
        raise self.error(start, f"unexpected character: {go_quote_rune(c)}")

    def _inside_braces(self) -> Token | None:
        text = self.text
        start = self.pos
        if start >= len(text):
            raise self.error(start, "unexpected end of input inside braces")
        c = text[start]
        if c == "#":
            self._skip_comment()
            return None
        if c in _SPACE:
            self.pos += 1
            return None
        if _is_alpha(c):
            end = start + 1
            while end < len(text) and _is_alnum(text[end]):
                end += 1
            self.pos = end
            return Token(IDENTIFIER, text[start:end], start)
        if c == ",":
            self.pos += 1
            return Token(",", ",", start)
        if c in "\"'":
            return self._string(c)
        if c == "`":
            return self._raw_string()
        nxt = self.peek_char(start + 1)
        if c == "=":
            if nxt == "~":
                self.pos += 2
                return Token("=~", "=~", start)
            self.pos += 1
            return Token("=", "=", start)
        if c == "!":
            if nxt in ("~", "=") and nxt:
                self.pos += 2
                return Token("!" + nxt, "!" + nxt, start)
            raise self.error(start, f"unexpected character after '!' inside braces: {go_quote_rune(nxt)}")
        if c == "{":
            raise self.error(start, "unexpected left brace '{'")
        if c == "}":
            self.pos += 1
            self.brace_open = False
            return Token("}", "}", start)
        raise self.error(start, f"unexpected character inside braces: {go_quote_rune(c)}")

    def _inside_brackets(self) -> Token | None:
        text = self.text
        start = self.pos
        if start >= len(text):
            raise self.error(start, "unexpected end of input in duration expression")
        c = text[start]
        if c in _SPACE:
            self.pos += 1
            return None
        if c == "]":
            self.pos += 1
            self.bracket_open = False
            self.got_colon = False
            return Token("]", "]", start)
        if c == ":":
            self.pos += 1
            if not self.got_duration:
                raise self.error(self.pos, "unexpected colon before duration in duration expression")
            if self.got_colon:
                raise self.error(self.pos, "unexpected repeated colon in duration expression")
            self.got_colon = True
            return Token(":", ":", start)
        if c == "(":
            self.pos += 1
            self.paren_depth += 1
            return Token("(", "(", start)
        if c == ")":
            self.pos += 1
            self.paren_depth -= 1
            if self.paren_depth < 0:
                raise self.error(self.pos, "unexpected right parenthesis ')'")
            return Token(")", ")", start)
        if c in "+-*/%^,":
            self.pos += 1
            return Token(c, c, start)
        if c in "sSmMrR":
            end = start
            while end < len(text) and _is_alpha(text[end]):
                end += 1
            word = text[start:end].lower()
            if word in ("step", "range", "min", "max"):
                self.pos = end
                return Token(word, text[start:end], start)
            raise self.error(start, f"unexpected character in duration expression: {go_quote_rune(c)}")
        nxt = self.peek_char(start + 1)
        if ("0" <= c <= "9") or (c == "." and nxt != "" and "0" <= nxt <= "9"):
            self.got_duration = True
            return self._number_or_duration()
        raise self.error(start, f"unexpected character in duration expression: {go_quote_rune(c)}")

    # Numbers and durations follow Prometheus' scanner character for character, so that the
    # same texts are accepted and the same texts are reported as bad.

    def _accept(self, valid: str) -> bool:
        c = self.peek_char(self.pos)
        if c and c in valid:
            self.pos += 1
            return True
        return False

    def _is(self, valid: str) -> bool:
        c = self.peek_char(self.pos)
        return bool(c) and c in valid

    def _scan_number(self) -> bool:
        initial = self.pos
        digits = _DIGITS
        if self._accept("0") and self._accept("xX"):
            self._accept("_")
            digits = _HEX_DIGITS
        self._accept(".")
        self._accept(digits)
        dot_seen = exponent_seen = False
        while self._is(digits + "._eE"):
            if self._is(".") and dot_seen:
                self._accept(".")
                return False
            if self._is("eE") and exponent_seen:
                self._accept("eE")
                return False
            if self._accept("."):
                dot_seen = True
                if self._accept("_."):
                    return False
                if digits is _HEX_DIGITS:
                    return False
                continue
            if self._accept("eE"):
                exponent_seen = True
                self._accept("+-")
                if self._accept("._eE") or self.pos >= len(self.text):
                    return False
                continue
            if self._accept("_"):
                if self._accept("._eE") or self.pos >= len(self.text):
                    return False
                continue
            while self._accept(digits):
                pass
        if self.pos == initial:
            return False
        return not _is_alnum(self.peek_char(self.pos) or " ")

    def _remaining_duration(self) -> bool:
        if not self._accept("smhdwy"):
            return False
        self._accept("s")
        while self._accept(_DIGITS):
            while self._accept(_DIGITS):
                pass
            if not self._accept("smhdw"):
                return False
            self._accept("s")
        c = self.peek_char(self.pos)
        if c and _is_alnum(c):
            self.pos += 1  # Prometheus quotes the offending character in its message
            return False
        return True

    def _number_or_duration(self) -> Token:
        start = self.pos
        if self._scan_number():
            return Token(NUMBER, self.text[start : self.pos], start)
        if self._remaining_duration():
            return Token(DURATION, self.text[start : self.pos], start)
        raise self.error(start, f"bad number or duration syntax: {go_quote(self.text[start : self.pos])}")

    def _string(self, quote: str) -> Token:
        text = self.text
        start = self.pos
        i = start + 1
        while True:
            if i >= len(text) or text[i] == "\n":
                raise self.error(start, "unterminated quoted string")
            c = text[i]
            if c == "\\":
                i = self._check_escape(start, i + 1, quote)
                continue
            i += 1
            if c == quote:
                self.pos = i
                return Token(STRING, text[start:i], start)

    def _check_escape(self, start: int, i: int, quote: str) -> int:
        """Validate the escape whose letter is at ``i``; return the index after it."""
        text = self.text
        if i >= len(text):
            raise self.error(start, "escape sequence not terminated")
        c = text[i]
        if c in "abfnrtv\\" or c == quote:
            return i + 1
        if c in "01234567":
            count, base, limit, j = 3, 8, 255, i
        elif c == "x":
            count, base, limit, j = 2, 16, 255, i + 1
        elif c == "u":
            count, base, limit, j = 4, 16, 0x10FFFF, i + 1
        elif c == "U":
            count, base, limit, j = 8, 16, 0x10FFFF, i + 1
        else:
            raise self.error(start, f"unknown escape sequence {go_unicode_rune(c)}")
        value = 0
        for _ in range(count):
            d = text[j] if j < len(text) else ""
            digit = int(d, 16) if d and d in _HEX_DIGITS else 16
            if digit >= base:
                if not d:
                    raise self.error(start, "escape sequence not terminated")
                raise self.error(start, f"illegal character {go_unicode_rune(d)} in escape sequence")
            value = value * base + digit
            j += 1
        if value > limit or 0xD800 <= value < 0xE000:
            raise self.error(start, "escape sequence is an invalid Unicode code point")
        return j

    def _raw_string(self) -> Token:
        start = self.pos
        end = self.text.find("`", start + 1)
        if end < 0:
            raise self.error(start, "unterminated raw string")
        self.pos = end + 1
        return Token(STRING, self.text[start : end + 1], start)

    def _keyword_or_identifier(self) -> Token:
        text = self.text
        start = self.pos
        end = start
        while end < len(text) and (_is_alnum(text[end]) or text[end] == ":"):
            end += 1
        self.pos = end
        word = text[start:end]
        lower = word.lower()
        if lower in ("inf", "nan"):
            return Token(NUMBER, word, start)
        if lower in KEYWORDS:
            return Token(lower, word, start)
        return Token(METRIC_IDENTIFIER if ":" in word else IDENTIFIER, word, start)


def tokenize(text: str) -> list[Token]:
    """All tokens of ``text`` up to and including ``EOF`` (for tests and tools)."""
    lexer = Lexer(text)
    tokens = []
    while True:
        token = lexer.next_token()
        tokens.append(token)
        if token.kind == EOF:
            return tokens


def unquote(token_text: str) -> str:
    """The value of a string token (quotes included), decoding Go escapes.

    ``\\x`` and octal escapes are bytes, as in Go; bytes that do not form valid UTF-8 are kept
    as surrogate escapes so that they print back as they were written.
    """
    quote = token_text[0]
    body = token_text[1:-1]
    if quote == "`":
        return body
    out = bytearray()
    i = 0
    n = len(body)
    simple = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, "'": 39, '"': 34}
    while i < n:
        c = body[i]
        if c != "\\":
            out += c.encode("utf-8", "surrogateescape")
            i += 1
            continue
        e = body[i + 1]
        if e in simple:
            out.append(simple[e])
            i += 2
        elif e in "01234567":
            out.append(int(body[i + 1 : i + 4], 8))
            i += 4
        elif e == "x":
            out.append(int(body[i + 2 : i + 4], 16))
            i += 4
        else:
            width = 4 if e == "u" else 8
            out += chr(int(body[i + 2 : i + 2 + width], 16)).encode("utf-8")
            i += 2 + width
    return out.decode("utf-8", "surrogateescape")


def _is_printable(c: str) -> bool:
    if 0xDC80 <= ord(c) <= 0xDCFF:
        return False
    return c == " " or (c.isprintable() and not c.isspace())


def go_quote(value: str) -> str:
    """``value`` quoted as Go's ``strconv.Quote`` does."""
    out = ['"']
    for c in value:
        code = ord(c)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif _is_printable(c):
            out.append(c)
        else:
            out.append(_escape_unprintable(c))
    out.append('"')
    return "".join(out)


def _escape_unprintable(c: str) -> str:
    named = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    if c in named:
        return named[c]
    code = ord(c)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_quote_rune(c: str) -> str:
    """A character quoted as Go's ``%q`` prints a rune (``''`` style); ``""`` is end of input."""
    if not c:
        return "'\ufffd'"
    if c == "'" or c == "\\":
        return f"'\\{c}'"
    if _is_printable(c):
        return f"'{c}'"
    return f"'{_escape_unprintable(c)}'"


def go_unicode_rune(c: str) -> str:
    """A character as Go's ``%#U`` prints it: ``U+0022 '"'``."""
    code = ord(c)
    if _is_printable(c):
        return f"U+{code:04X} '{c}'"
    return f"U+{code:04X}"
