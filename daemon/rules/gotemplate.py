"""Go's text/template syntax: lexer, parse tree and parser, with Go's error messages.

Positions are byte offsets into the source, as Go reports them (``NAME:LINE:COL``). Functions
are checked at parse time, like Go: a template naming an unknown function does not parse.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Union

LEFT, RIGHT = "{{", "}}"
_SPACE = " \t\r\n"
_KEYWORDS = frozenset(
    ("block", "break", "continue", "define", "else", "end", "if", "range", "nil", "template", "with")
)
_ALNUM = re.compile(r"[\w]*", re.UNICODE)
_NUMBER = re.compile(
    r"[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?"
    r"|0[oObB][0-9_]*|[0-9_]*(?:\.[0-9_]*)?(?:[eE][+-]?[0-9_]+)?)i?"
)


class ParseError(ValueError):
    """A template that does not parse; ``str()`` is Go's message (``template: NAME:LINE: ...``)."""


# Item kinds.
EOF, ERROR, TEXT, COMMENT, LDELIM, RDELIM, SPACE = "EOF", "error", "text", "comment", "{{", "}}", "space"
BOOL, CHAR, NUMBER, STRING, RAWSTRING, IDENT, FIELD, VARIABLE, DOT = (
    "bool", "char", "number", "string", "rawstring", "identifier", "field", "variable", "dot"
)
PIPE, LPAREN, RPAREN, DECLARE, ASSIGN, COMMA, KEYWORD, NIL = "|", "(", ")", ":=", "=", ",", "keyword", "nil"


@dataclass(frozen=True, slots=True)
class Item:
    """A lexical token: kind, position (byte offset), text and line."""

    kind: str
    pos: int
    val: str
    line: int

    def __str__(self) -> str:
        if self.kind == EOF:
            return "EOF"
        if self.kind == ERROR:
            return self.val
        if self.kind in (KEYWORD, NIL):
            return f"<{self.val}>"
        if len(self.val) > 10:
            return _go_quote(self.val[:10]) + "..."
        return _go_quote(self.val)


def _go_quote(text: str) -> str:
    from daemon.rules.template_fmt import go_quote

    return go_quote(text)


class _Lexer:
    """Go's state-machine lexer, run to completion into a list of items."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[Item] = []
        # Byte offsets: Go positions count UTF-8 bytes.
        self.ascii = text.isascii()
        self.line = 1
        self.paren_depth = 0

    def byte_pos(self, i: int) -> int:
        return i if self.ascii else len(self.text[:i].encode("utf-8", "surrogatepass"))

    def emit(self, kind: str, start: int, end: int) -> None:
        val = self.text[start:end]
        self.items.append(Item(kind, self.byte_pos(start), val, self.line))
        self.line += val.count("\n")

    def error(self, i: int, msg: str) -> None:
        self.items.append(Item(ERROR, self.byte_pos(i), msg, self.line))

    def run(self) -> list[Item]:
        text, i, n = self.text, 0, len(self.text)
        while True:
            j = text.find(LEFT, i)
            if j < 0:
                if i < n:
                    self._emit_text(i, n)
                self.items.append(Item(EOF, self.byte_pos(n), "", self.line))
                return self.items
            trim = j + 2 < n and text[j + 2] == "-" and j + 3 < n and text[j + 3] in _SPACE
            end = j
            if trim:
                while end > i and text[end - 1] in _SPACE:
                    end -= 1
            if end > i:
                self._emit_text(i, end)
            i = self._action(j, trim)
            if i < 0:
                self.items.append(Item(EOF, self.byte_pos(n), "", self.line))
                return self.items

    def _emit_text(self, start: int, end: int) -> None:
        val = self.text[start:end]
        self.items.append(Item(TEXT, self.byte_pos(start), val, self.line))
        self.line += val.count("\n")

    def _action(self, start: int, trim_left: bool) -> int:
        """Lex one action from its ``{{``; the index after it, or -1 after an error."""
        text, n = self.text, len(self.text)
        i = start + 2 + (2 if trim_left else 0)
        if text.startswith("/*", i):
            return self._comment(start, i)
        self.items.append(Item(LDELIM, self.byte_pos(start), LEFT, self.line))
        self.paren_depth = 0
        while True:
            if text.startswith(RIGHT, i) or self._right_trim(i):
                return self._close(i)
            if i >= n:
                self.error(i, "unclosed action")
                return -1
            ch = text[i]
            if ch in _SPACE:
                j = i
                while j < n and text[j] in _SPACE:
                    if self._right_trim(j):
                        break
                    j += 1
                if j > i:
                    self.emit(SPACE, i, j)
                i = j
                continue
            if ch == "=":
                self.emit(ASSIGN, i, i + 1)
                i += 1
            elif ch == ":":
                if not text.startswith(":=", i):
                    self.error(i, "expected :=")
                    return -1
                self.emit(DECLARE, i, i + 2)
                i += 2
            elif ch == "|":
                self.emit(PIPE, i, i + 1)
                i += 1
            elif ch == '"':
                j = self._quoted(i)
                if j < 0:
                    return -1
                self.emit(STRING, i, j)
                i = j
            elif ch == "`":
                j = text.find("`", i + 1)
                if j < 0:
                    self.error(i, "unterminated raw quoted string")
                    return -1
                self.emit(RAWSTRING, i, j + 1)
                i = j + 1
            elif ch == "'":
                j = self._char(i)
                if j < 0:
                    return -1
                self.emit(CHAR, i, j)
                i = j
            elif ch == "$":
                j = self._word_end(i + 1)
                self.emit(VARIABLE, i, j)
                i = j
            elif ch == "." and not (i + 1 < n and text[i + 1].isdigit()):
                j = self._word_end(i + 1)
                self.emit(DOT if j == i + 1 else FIELD, i, j)
                i = j
            elif ch in "+-." or ch.isdigit():
                m = _NUMBER.match(text, i)
                j = m.end() if m else i
                if j == i or (j < n and (text[j].isalnum() or text[j] == "_")):
                    k = j
                    while k < n and (text[k].isalnum() or text[k] in "_.+-"):
                        k += 1
                    self.error(i, f"bad number syntax: {_go_quote(text[i:max(k, i + 1)])}")
                    return -1
                self.emit(NUMBER, i, j)
                i = j
            elif ch.isalpha() or ch == "_":
                j = self._word_end(i)
                word = text[i:j]
                if j < n and not self._at_terminator(j):
                    self.error(j, f"bad character {_rune_desc(text[j])}")
                    return -1
                if word in _KEYWORDS:
                    self.emit(NIL if word == "nil" else KEYWORD, i, j)
                elif word in ("true", "false"):
                    self.emit(BOOL, i, j)
                else:
                    self.emit(IDENT, i, j)
                i = j
            elif ch == "(":
                self.paren_depth += 1
                self.emit(LPAREN, i, i + 1)
                i += 1
            elif ch == ")":
                self.paren_depth -= 1
                if self.paren_depth < 0:
                    self.error(i, "unexpected right paren")
                    return -1
                self.emit(RPAREN, i, i + 1)
                i += 1
            elif ch == ",":
                self.emit(COMMA, i, i + 1)
                i += 1
            else:
                self.error(i, f"unrecognized character in action: {_rune_desc(ch)}")
                return -1

    def _right_trim(self, i: int) -> bool:
        return self.text[i : i + 1] in (" ", "\t", "\r", "\n") and self.text.startswith("-" + RIGHT, i + 1)

    def _close(self, i: int) -> int:
        text, n = self.text, len(self.text)
        if self.paren_depth > 0:
            self.error(i, "unclosed left paren")
            return -1
        trim = not text.startswith(RIGHT, i)
        if trim:
            i += 2
        self.items.append(Item(RDELIM, self.byte_pos(i), RIGHT, self.line))
        i += 2
        if trim:
            while i < n and text[i] in _SPACE:
                if text[i] == "\n":
                    self.line += 1
                i += 1
        return i

    def _comment(self, start: int, i: int) -> int:
        text, n = self.text, len(self.text)
        end = text.find("*/", i + 2)
        if end < 0:
            self.error(i, "unclosed comment")
            return -1
        j = end + 2
        trim = False
        if text.startswith(RIGHT, j):
            pass
        elif self._right_trim(j):
            trim = True
            j += 2
        else:
            self.error(j, "comment ends before closing delimiter")
            return -1
        self.items.append(Item(COMMENT, self.byte_pos(i), text[i : end + 2], self.line))
        self.line += text[start:j].count("\n")
        j += 2
        if trim:
            while j < n and text[j] in _SPACE:
                if text[j] == "\n":
                    self.line += 1
                j += 1
        return j

    def _quoted(self, i: int) -> int:
        text, n = self.text, len(self.text)
        j = i + 1
        while j < n:
            ch = text[j]
            if ch == "\\":
                j += 2
                continue
            if ch == "\n":
                break
            if ch == '"':
                return j + 1
            j += 1
        self.error(i, "unterminated quoted string")
        return -1

    def _char(self, i: int) -> int:
        text, n = self.text, len(self.text)
        j = i + 1
        while j < n:
            ch = text[j]
            if ch == "\\":
                j += 2
                continue
            if ch == "\n":
                break
            if ch == "'":
                return j + 1
            j += 1
        self.error(i, "unterminated character constant")
        return -1

    def _word_end(self, i: int) -> int:
        m = _ALNUM.match(self.text, i)
        return m.end() if m else i

    def _at_terminator(self, j: int) -> bool:
        ch = self.text[j]
        return ch in _SPACE or ch in ".,|:)(" or self.text.startswith(RIGHT, j)


def _rune_desc(ch: str) -> str:
    """fmt's ``%#U``: ``U+0040 '@'``, or just ``U+00A0`` when not printable."""
    code = ord(ch)
    if ch.isprintable():
        return f"U+{code:04X} '{ch}'"
    return f"U+{code:04X}"


# ---- parse tree ----------------------------------------------------------------------------


@dataclass(slots=True)
class Node:
    """Base of parse-tree nodes; ``pos`` is a byte offset into the template text."""

    pos: int


@dataclass(slots=True)
class TextNode(Node):
    text: str


@dataclass(slots=True)
class DotNode(Node):
    def __str__(self) -> str:
        return "."


@dataclass(slots=True)
class NilNode(Node):
    def __str__(self) -> str:
        return "nil"


@dataclass(slots=True)
class BoolNode(Node):
    value: bool

    def __str__(self) -> str:
        return "true" if self.value else "false"


@dataclass(slots=True)
class NumberNode(Node):
    """A numeric or character constant; ``value`` is the Go value it stands for untyped."""

    text: str
    is_int: bool
    is_float: bool
    int_value: int
    float_value: float
    value: int | float

    def __str__(self) -> str:
        return self.text


@dataclass(slots=True)
class StringNode(Node):
    quoted: str
    text: str

    def __str__(self) -> str:
        return self.quoted


@dataclass(slots=True)
class IdentifierNode(Node):
    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(slots=True)
class FieldNode(Node):
    idents: list[str]

    def __str__(self) -> str:
        return "".join("." + i for i in self.idents)


@dataclass(slots=True)
class VariableNode(Node):
    idents: list[str]

    def __str__(self) -> str:
        return ".".join(self.idents)


@dataclass(slots=True)
class ChainNode(Node):
    node: Operand
    fields: list[str]

    def __str__(self) -> str:
        inner = f"({self.node})" if isinstance(self.node, PipeNode) else str(self.node)
        return inner + "".join("." + f for f in self.fields)


@dataclass(slots=True)
class CommandNode(Node):
    args: list[Operand] = field(default_factory=list)

    def __str__(self) -> str:
        return " ".join(f"({a})" if isinstance(a, PipeNode) else str(a) for a in self.args)


@dataclass(slots=True)
class PipeNode(Node):
    line: int
    is_assign: bool = False
    decl: list[VariableNode] = field(default_factory=list)
    cmds: list[CommandNode] = field(default_factory=list)

    def __str__(self) -> str:
        head = ""
        if self.decl:
            head = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return head + " | ".join(str(c) for c in self.cmds)


Operand = Union[
    DotNode, NilNode, BoolNode, NumberNode, StringNode, IdentifierNode, FieldNode, VariableNode, ChainNode, PipeNode
]


@dataclass(slots=True)
class ListNode(Node):
    nodes: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class ActionNode(Node):
    line: int
    pipe: PipeNode

    def __str__(self) -> str:
        return "{{" + str(self.pipe) + "}}"


@dataclass(slots=True)
class BranchNode(Node):
    """``if``, ``with`` or ``range`` (``kind``), with its body and optional else list."""

    kind: str
    line: int
    pipe: PipeNode
    body: ListNode
    else_body: ListNode | None

    def __str__(self) -> str:
        return "{{" + self.kind + " " + str(self.pipe) + "}}"


@dataclass(slots=True)
class TemplateNode(Node):
    line: int
    name: str
    pipe: PipeNode | None

    def __str__(self) -> str:
        return "{{template " + _go_quote(self.name) + (" " + str(self.pipe) if self.pipe else "") + "}}"


@dataclass(slots=True)
class BreakNode(Node):
    line: int


@dataclass(slots=True)
class ContinueNode(Node):
    line: int


@dataclass(slots=True)
class _EndNode(Node):
    def __str__(self) -> str:
        return "{{end}}"


@dataclass(slots=True)
class _ElseNode(Node):
    line: int

    def __str__(self) -> str:
        return "{{else}}"


# ---- parser --------------------------------------------------------------------------------


@dataclass(slots=True)
class Tree:
    """A parsed template: its name, source text and root list."""

    name: str
    text: str
    root: ListNode


class Parser:
    """Recursive descent over the items, as Go's parse package does, with the same messages."""

    def __init__(self, text: str, name: str, functions: Collection[str], max_depth: int = 200) -> None:
        self.text = text
        self.name = name
        self.functions = functions
        self.items = _Lexer(text).run()
        self.i = 0
        self.vars: list[str] = ["$"]
        self.range_depth = 0
        self.action_line = 0
        self.depth = 0
        self.max_depth = max_depth
        self.trees: dict[str, Tree] = {}

    # -- token stream --

    def next(self) -> Item:
        # Reading past the end keeps returning EOF; backing up stays consistent.
        item = self.items[min(self.i, len(self.items) - 1)]
        self.i += 1
        return item

    def backup(self, count: int = 1) -> None:
        self.i -= count

    def peek(self) -> Item:
        return self.items[min(self.i, len(self.items) - 1)]

    def next_non_space(self) -> Item:
        item = self.next()
        while item.kind == SPACE:
            item = self.next()
        return item

    def peek_non_space(self) -> Item:
        item = self.next_non_space()
        self.backup()
        return item

    def errorf(self, msg: str, line: int | None = None) -> ParseError:
        if line is None:
            line = self.items[min(max(self.i - 1, 0), len(self.items) - 1)].line
        return ParseError(f"template: {self.name}:{line}: {msg}")

    def unexpected(self, item: Item, context: str) -> ParseError:
        if item.kind == ERROR:
            extra = ""
            if self.action_line and self.action_line != item.line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if item.val.endswith(" action"):
                    extra = extra[len(" in action") :]
            return self.errorf(f"{item}{extra}", item.line)
        return self.errorf(f"unexpected {item} in {context}", item.line)

    def expect(self, kind: str, context: str) -> Item:
        item = self.next_non_space()
        if item.kind != kind:
            raise self.unexpected(item, context)
        return item

    # -- structure --

    def parse(self) -> dict[str, Tree]:
        """Parse the whole text; the main tree is under ``self.name``, defined ones by their names."""
        root = ListNode(0)
        while self.peek().kind != EOF:
            if self.peek().kind == LDELIM:
                save = self.i
                self.next()
                token = self.next_non_space()
                if token.kind == KEYWORD and token.val == "define":
                    self.parse_definition()
                    continue
                self.i = save
            node = self.text_or_action()
            if isinstance(node, (_EndNode, _ElseNode)):
                raise self.errorf(f"unexpected {node}")
            if node is not None:
                root.nodes.append(node)
        self.add_tree(Tree(self.name, self.text, root))
        return self.trees

    def add_tree(self, tree: Tree) -> None:
        existing = self.trees.get(tree.name)
        # Go lets an empty body be redefined, and a non-empty one replace an empty one.
        if existing is not None and _is_empty(tree.root):
            return
        self.trees[tree.name] = tree

    def parse_definition(self) -> None:
        token = self.next_non_space()
        if token.kind not in (STRING, RAWSTRING):
            raise self.unexpected(token, "define clause")
        name = _unquote(token.val)
        self.expect(RDELIM, "define clause")
        saved_vars, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        if not isinstance(end, _EndNode):
            raise self.errorf(f"unexpected {end} in define clause")
        self.vars = saved_vars
        self.add_tree(Tree(name, self.text, body))

    def item_list(self) -> tuple[ListNode, Node]:
        body = ListNode(self.peek_non_space().pos)
        while self.peek_non_space().kind != EOF:
            node = self.text_or_action()
            if isinstance(node, (_EndNode, _ElseNode)):
                return body, node
            if node is not None:
                body.nodes.append(node)
        raise self.errorf("unexpected EOF")

    def text_or_action(self) -> Node | None:
        item = self.next_non_space()
        if item.kind == TEXT:
            return TextNode(item.pos, item.val)
        if item.kind == LDELIM:
            self.action_line = self.peek().line
            try:
                return self.action()
            finally:
                self.action_line = 0
        if item.kind == COMMENT:
            return None
        raise self.unexpected(item, "input")

    def action(self) -> Node:
        token = self.next_non_space()
        if token.kind == KEYWORD:
            kw = token.val
            if kw == "block":
                return self.block_control()
            if kw == "break":
                return self.break_control(token, "break")
            if kw == "continue":
                return self.break_control(token, "continue")
            if kw == "else":
                return self.else_control()
            if kw == "end":
                return _EndNode(self.expect(RDELIM, "end").pos)
            if kw in ("if", "range", "with"):
                return self.control(kw, token)
            if kw == "template":
                return self.template_control()
        self.backup()
        token = self.peek()
        return ActionNode(token.pos, token.line, self.pipeline("command", RDELIM))

    def break_control(self, token: Item, kw: str) -> Node:
        nxt = self.next_non_space()
        if nxt.kind != RDELIM:
            raise self.unexpected(nxt, "{{" + kw + "}}")
        if self.range_depth == 0:
            raise self.errorf("{{" + kw + "}} outside {{range}}")
        return BreakNode(token.pos, token.line) if kw == "break" else ContinueNode(token.pos, token.line)

    def else_control(self) -> Node:
        peek = self.peek_non_space()
        if peek.kind == KEYWORD and peek.val in ("if", "with"):
            # "{{else if ...}}" is "{{else}}{{if ...}}", ending with the outer "{{end}}".
            return _ElseNode(peek.pos, peek.line)
        token = self.expect(RDELIM, "else")
        return _ElseNode(token.pos, token.line)

    def control(self, kind: str, token: Item) -> BranchNode:
        self.depth += 1
        if self.depth > self.max_depth:
            raise self.errorf("template nested too deeply")
        mark = len(self.vars)
        try:
            pipe = self.pipeline(kind, RDELIM)
            if kind == "range":
                self.range_depth += 1
            body, nxt = self.item_list()
            if kind == "range":
                self.range_depth -= 1
            else_body: ListNode | None = None
            if isinstance(nxt, _ElseNode):
                peek = self.peek_non_space()
                if kind in ("if", "with") and peek.kind == KEYWORD and peek.val == kind:
                    inner_token = self.next_non_space()
                    else_body = ListNode(nxt.pos, [self.control(kind, inner_token)])
                else:
                    else_body, end = self.item_list()
                    if not isinstance(end, _EndNode):
                        raise self.errorf(f"expected end; found {end}")
            return BranchNode(token.pos, kind, token.line, pipe, body, else_body)
        finally:
            del self.vars[mark:]
            self.depth -= 1

    def template_control(self) -> TemplateNode:
        token = self.next_non_space()
        name = self.parse_template_name(token, "template clause")
        pipe: PipeNode | None = None
        if self.next_non_space().kind != RDELIM:
            self.backup()
            pipe = self.pipeline("template clause", RDELIM)
        return TemplateNode(token.pos, token.line, name, pipe)

    def block_control(self) -> TemplateNode:
        token = self.next_non_space()
        name = self.parse_template_name(token, "block clause")
        pipe = self.pipeline("block clause", RDELIM)
        saved_vars, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = saved_vars
        if not isinstance(end, _EndNode):
            raise self.errorf(f"unexpected {end} in block clause")
        self.add_tree(Tree(name, self.text, body))
        return TemplateNode(token.pos, token.line, name, pipe)

    def parse_template_name(self, token: Item, context: str) -> str:
        if token.kind not in (STRING, RAWSTRING):
            raise self.unexpected(token, context)
        return _unquote(token.val)

    # -- pipelines --

    def pipeline(self, context: str, end: str) -> PipeNode:
        token = self.peek_non_space()
        pipe = PipeNode(token.pos, token.line)
        while True:
            save = self.i
            v = self.next_non_space()
            if v.kind != VARIABLE:
                self.i = save
                break
            nxt = self.peek_non_space()
            if nxt.kind in (ASSIGN, DECLARE):
                pipe.is_assign = nxt.kind == ASSIGN
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                if pipe.is_assign and v.val not in self.vars:
                    raise self.errorf(f"undefined variable {_go_quote(v.val)}")
                self.vars.append(v.val)
                break
            if nxt.kind == COMMA:
                self.next_non_space()
                pipe.decl.append(VariableNode(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().kind in (VARIABLE, RDELIM, RPAREN):
                        continue
                    raise self.errorf("range can only initialize variables")
                raise self.errorf(f"too many declarations in {context}")
            # Not a declaration: put the variable back and parse it as an operand.
            self.i = save
            break
        while True:
            token = self.next_non_space()
            if token.kind == end:
                self.check_pipeline(pipe, context)
                return pipe
            if token.kind in (BOOL, CHAR, DOT, FIELD, IDENT, NUMBER, NIL, RAWSTRING, STRING, VARIABLE, LPAREN):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                raise self.unexpected(token, context)

    def check_pipeline(self, pipe: PipeNode, context: str) -> None:
        if not pipe.cmds:
            raise self.errorf(f"missing value for {context}")
        for i, cmd in enumerate(pipe.cmds[1:], start=2):
            if isinstance(cmd.args[0], (BoolNode, DotNode, NilNode, NumberNode, StringNode)):
                raise self.errorf(f"non executable command in pipeline stage {i}")

    def command(self) -> CommandNode:
        cmd = CommandNode(self.peek_non_space().pos)
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            token = self.next()
            if token.kind == SPACE:
                continue
            if token.kind in (RDELIM, RPAREN):
                self.backup()
            elif token.kind != PIPE:
                raise self.unexpected(token, "operand")
            break
        if not cmd.args:
            raise self.errorf("empty command")
        return cmd

    def operand(self) -> Operand | None:
        node = self.term()
        if node is None:
            return None
        if self.peek().kind == FIELD:
            fields: list[str] = []
            while self.peek().kind == FIELD:
                fields.append(self.next().val[1:])
            if isinstance(node, FieldNode):
                return FieldNode(node.pos, node.idents + fields)
            if isinstance(node, VariableNode):
                return VariableNode(node.pos, node.idents + fields)
            if isinstance(node, (BoolNode, StringNode, NumberNode, NilNode, DotNode)):
                raise self.errorf(f"unexpected . after term {_go_quote(str(node))}")
            return ChainNode(node.pos, node, fields)
        return node

    def term(self) -> Operand | None:
        token = self.next_non_space()
        kind = token.kind
        if kind == IDENT:
            if token.val not in self.functions:
                raise self.errorf(f"function {_go_quote(token.val)} not defined", token.line)
            return IdentifierNode(token.pos, token.val)
        if kind == DOT:
            return DotNode(token.pos)
        if kind == NIL:
            return NilNode(token.pos)
        if kind == VARIABLE:
            if token.val not in self.vars:
                raise self.errorf(f"undefined variable {_go_quote(token.val)}", token.line)
            return VariableNode(token.pos, [token.val])
        if kind == FIELD:
            return FieldNode(token.pos, [token.val[1:]])
        if kind == BOOL:
            return BoolNode(token.pos, token.val == "true")
        if kind in (CHAR, NUMBER):
            return self.number(token)
        if kind == LPAREN:
            self.depth += 1
            if self.depth > self.max_depth:
                raise self.errorf("template nested too deeply")
            pipe = self.pipeline("parenthesized pipeline", RPAREN)
            self.depth -= 1
            return pipe
        if kind in (STRING, RAWSTRING):
            try:
                return StringNode(token.pos, token.val, _unquote(token.val))
            except ValueError as exc:
                raise self.errorf(str(exc), token.line) from None
        self.backup()
        return None

    def number(self, token: Item) -> NumberNode:
        try:
            return _number(token)
        except ValueError as exc:
            raise self.errorf(str(exc), token.line) from None


def _is_empty(node: ListNode) -> bool:
    return all(isinstance(n, TextNode) and not n.text.strip() for n in node.nodes)


def _number(token: Item) -> NumberNode:
    text = token.val
    if token.kind == CHAR:
        rune = _unquote_char(text)
        return NumberNode(token.pos, text, True, True, ord(rune), float(ord(rune)), ord(rune))
    if text.endswith("i"):
        raise ValueError(f"illegal number syntax: {_go_quote(text)}")
    is_int = is_float = False
    int_value, float_value = 0, 0.0
    clean = text.replace("_", "")
    try:
        # Go reads a leading 0 as octal; Python's base 0 refuses it.
        octal = re.fullmatch(r"[+-]?0[0-7]+", clean)
        int_value = int(clean, 8) if octal else int(clean, 0)
        is_int = True
        is_float = True
        float_value = float(int_value)
    except ValueError:
        try:
            float_value = float.fromhex(clean) if clean.lstrip("+-")[:2].lower() == "0x" else float(clean)
        except ValueError:
            raise ValueError(f"illegal number syntax: {_go_quote(text)}") from None
        if not any(c in text for c in ".eEpP"):
            raise ValueError(f"integer overflow: {_go_quote(text)}") from None
        is_float = True
        if float_value == int(float_value) if abs(float_value) < 2**63 else False:
            is_int = True
            int_value = int(float_value)
    if "_" in text and (text.startswith("_") or text.endswith("_") or "__" in text):
        raise ValueError(f"illegal number syntax: {_go_quote(text)}")
    is_hex_int = clean.lstrip("+-")[:2].lower() == "0x" and not any(c in clean for c in ".pP")
    value: int | float
    if is_float and not is_hex_int and any(c in text for c in ".eEpP"):
        value = float_value
    elif is_int:
        if not -(2**63) <= int_value < 2**63:
            raise ValueError(f"{text} overflows int")
        value = int_value
    else:
        value = float_value
    return NumberNode(token.pos, text, is_int, is_float, int_value, float_value, value)


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _unquote(text: str) -> str:
    """strconv.Unquote for ``"..."`` and raw `` `...` `` strings."""
    if text.startswith("`"):
        return text[1:-1].replace("\r", "")
    body = text[1:-1]
    if "\\" not in body:
        return body
    return _unescape(body, '"')


def _unquote_char(text: str) -> str:
    body = _unescape(text[1:-1], "'")
    if len(body) != 1:
        raise ValueError(f"malformed character constant: {text}")
    return body


def _unescape(body: str, quote: str) -> str:
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            raise ValueError("invalid syntax")
        esc = body[i + 1]
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc == quote:
            out.append(quote)
            i += 2
        elif esc in "xuU":
            size = {"x": 2, "u": 4, "U": 8}[esc]
            digits = body[i + 2 : i + 2 + size]
            if len(digits) != size or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError("invalid syntax")
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise ValueError("invalid syntax")
            out.append(chr(code))
            i += 2 + size
        elif esc in "01234567":
            digits = body[i + 1 : i + 4]
            if len(digits) != 3 or not all(c in "01234567" for c in digits) or int(digits, 8) > 255:
                raise ValueError("invalid syntax")
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise ValueError("invalid syntax")
    return "".join(out)


def parse(text: str, name: str, functions: Collection[str]) -> dict[str, Tree]:
    """Parse ``text`` as template ``name``; the result maps template names (``define``) to trees.

    Raises ``ParseError`` with Go's message.
    """
    return Parser(text, name, functions).parse()


def location(tree_text: str, pos: int, name: str) -> str:
    """``NAME:LINE:COL`` for byte offset ``pos``, as Go's ErrorContext reports it (COL from 0)."""
    data = tree_text.encode("utf-8", "surrogatepass")[:pos]
    line = 1 + data.count(b"\n")
    nl = data.rfind(b"\n")
    col = pos if nl < 0 else pos - (nl + 1)
    return f"{name}:{line}:{col}"
