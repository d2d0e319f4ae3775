"""Executing parsed Go templates: Go's evaluation rules, builtins and ``executing ... at <...>`` errors.

Execution is bounded: a template that loops or grows without end stops with an error after
``max_steps`` evaluation steps or ``max_output`` characters of output, and nested ``template``
calls stop at ``max_depth``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from daemon.rules.gotemplate import (
    ActionNode,
    BoolNode,
    BranchNode,
    BreakNode,
    ChainNode,
    CommandNode,
    ContinueNode,
    DotNode,
    FieldNode,
    IdentifierNode,
    ListNode,
    Node,
    NilNode,
    NumberNode,
    PipeNode,
    StringNode,
    TemplateNode,
    TextNode,
    Tree,
    VariableNode,
    location,
)
from daemon.rules.template_fmt import sprint, sprint_value, sprintf, sprintln
from daemon.rules.template_values import (
    GoError,
    GoList,
    GoStruct,
    Html,
    Method,
    go_type,
    truth,
)


class ExecError(Exception):
    """A template that failed while executing; ``str()`` is Go's message."""


@dataclass(frozen=True, slots=True)
class Function:
    """A template function: a Python callable and its Go parameter types.

    ``params`` are Go type names (``string``, ``float64``, ``int``, ``bool``, ``any`` and the
    template value types); with ``variadic`` the last one repeats. The callable raises
    ``GoError`` (or any exception, as a Go panic) to fail the template.
    """

    fn: Callable[..., Any]
    params: tuple[str, ...]
    variadic: bool = False


class _Missing:
    """No final value: the first command of a pipeline."""


_MISSING = _Missing()


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


_NILLABLE = ("any", "template.queryResult", "*template.sample", "map[string]string", "[]interface {}")


def _assignable(value: Any, typ: str) -> bool:
    if typ == "any":
        return True
    if typ == "string":
        return isinstance(value, str)
    if typ == "float64":
        return isinstance(value, float)
    if typ == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if typ == "bool":
        return isinstance(value, bool)
    return go_type(value) == typ


class Executor:
    """One execution of a template set; not reused across executions."""

    def __init__(
        self,
        trees: Mapping[str, Tree],
        functions: Mapping[str, Function],
        *,
        max_steps: int,
        max_output: int,
        max_depth: int = 100,
    ) -> None:
        self.trees = trees
        self.functions = functions
        self.max_steps = max_steps
        self.max_output = max_output
        self.max_depth = max_depth
        self.steps = 0
        self.out: list[str] = []
        self.out_len = 0
        self.vars: list[tuple[str, Any]] = []
        self.node: Node | None = None
        self.tree: Tree | None = None
        self.depth = 0

    # -- entry and errors --

    def execute(self, name: str, data: Any) -> str:
        """Run template ``name`` with ``data`` as dot; raises ``ExecError``."""
        tree = self.trees[name]
        self.tree = tree
        self.vars = [("$", data)]
        try:
            self.walk(data, tree.root)
        except (_Break, _Continue):
            pass
        return "".join(self.out)

    def errorf(self, msg: str) -> ExecError:
        assert self.tree is not None
        name = self.tree.name
        if self.node is None:
            return ExecError(f"template: {name}: {msg}")
        loc = location(self.tree.text, self.node.pos, self._parse_name())
        return ExecError(f'template: {loc}: executing "{name}" at <{self.node}>: {msg}')

    def _parse_name(self) -> str:
        # Defined templates share the text, and Go reports positions under the top name.
        return next(iter(self.trees.values())).name if self.trees else ""

    def at(self, node: Node) -> None:
        self.node = node

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise self.errorf(f"template exceeded {self.max_steps} execution steps")

    def write(self, text: str) -> None:
        self.out_len += len(text)
        if self.out_len > self.max_output:
            raise self.errorf(f"template output exceeds {self.max_output} bytes")
        self.out.append(text)

    # -- statements --

    def walk(self, dot: Any, node: Node) -> None:
        self.at(node)
        self.step()
        if isinstance(node, ListNode):
            for child in node.nodes:
                self.walk(dot, child)
        elif isinstance(node, TextNode):
            self.write(node.text)
        elif isinstance(node, ActionNode):
            value = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, value)
        elif isinstance(node, BranchNode):
            if node.kind == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif isinstance(node, TemplateNode):
            self.walk_template(dot, node)
        elif isinstance(node, BreakNode):
            raise _Break()
        elif isinstance(node, ContinueNode):
            raise _Continue()
        else:
            raise self.errorf(f"unknown node: {node}")

    def print_value(self, node: Node, value: Any) -> None:
        self.at(node)
        self.write("<no value>" if value is None else sprint_value(value))

    def walk_if_or_with(self, dot: Any, node: BranchNode) -> None:
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            if truth(value):
                self.walk(value if node.kind == "with" else dot, node.body)
            elif node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            del self.vars[mark:]

    def walk_range(self, dot: Any, node: BranchNode) -> None:
        self.at(node)
        mark = len(self.vars)
        try:
            value = self.eval_pipeline(dot, node.pipe)
            body_mark = len(self.vars)
            pairs: list[tuple[Any, Any]]
            if isinstance(value, list):
                pairs = list(enumerate(value))
            elif isinstance(value, dict):
                pairs = sorted(value.items(), key=lambda kv: _map_key(kv[0]))
            elif isinstance(value, int) and not isinstance(value, bool):
                if len(node.pipe.decl) > 1:
                    raise self.errorf("can't use {value} to iterate over more than one variable")
                pairs = [(i, i) for i in range(max(value, 0))]
            elif value is None:
                pairs = []
            else:
                raise self.errorf(f"range can't iterate over {sprint_value(value)}")
            decl = node.pipe.decl
            for index, elem in pairs:
                self.step()
                if decl:
                    if node.pipe.is_assign:
                        self.set_var(decl[0].idents[0], index if len(decl) > 1 else elem)
                        if len(decl) > 1:
                            self.set_var(decl[1].idents[0], elem)
                    else:
                        self.vars[-1] = (self.vars[-1][0], elem)
                        if len(decl) > 1:
                            self.vars[-2] = (self.vars[-2][0], index)
                try:
                    self.walk(elem, node.body)
                except _Break:
                    break
                except _Continue:
                    pass
                finally:
                    del self.vars[body_mark:]
            if not pairs and node.else_body is not None:
                self.walk(dot, node.else_body)
        finally:
            del self.vars[mark:]

    def walk_template(self, dot: Any, node: TemplateNode) -> None:
        self.at(node)
        tree = self.trees.get(node.name)
        if tree is None:
            raise self.errorf(f'template "{node.name}" not defined')
        if self.depth >= self.max_depth:
            raise self.errorf(f"exceeded maximum template depth ({self.max_depth})")
        new_dot = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else None
        saved = (self.tree, self.vars, self.depth)
        # Template calls see no variables but "$" (no dynamic scoping).
        self.tree, self.vars, self.depth = tree, [("$", new_dot)], self.depth + 1
        try:
            self.walk(new_dot, tree.root)
        finally:
            self.tree, self.vars, self.depth = saved

    # -- variables --

    def set_var(self, name: str, value: Any) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        raise self.errorf(f"undefined variable: {name}")

    def var_value(self, name: str) -> Any:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                return self.vars[i][1]
        raise self.errorf(f"undefined variable: {name}")

    # -- pipelines and commands --

    def eval_pipeline(self, dot: Any, pipe: PipeNode) -> Any:
        self.at(pipe)
        value: Any = _MISSING
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.idents[0], value)
            else:
                self.vars.append((var.idents[0], value))
        return value

    def not_a_function(self, args: list[Any], final: Any) -> None:
        if len(args) > 1 or final is not _MISSING:
            raise self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot: Any, cmd: CommandNode, final: Any) -> Any:
        self.step()
        first = cmd.args[0]
        if isinstance(first, FieldNode):
            self.at(first)
            return self.eval_field_chain(dot, dot, first, first.idents, cmd.args, final)
        if isinstance(first, ChainNode):
            return self.eval_chain(dot, first, cmd.args, final)
        if isinstance(first, IdentifierNode):
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if isinstance(first, PipeNode):
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if isinstance(first, VariableNode):
            return self.eval_variable(dot, first, cmd.args, final)
        self.at(first)
        self.not_a_function(cmd.args, final)
        if isinstance(first, BoolNode):
            return first.value
        if isinstance(first, DotNode):
            return dot
        if isinstance(first, NilNode):
            raise self.errorf("nil is not a command")
        if isinstance(first, NumberNode):
            return first.value
        if isinstance(first, StringNode):
            return first.text
        raise self.errorf(f"can't evaluate command {first}")

    def eval_variable(self, dot: Any, var: VariableNode, args: list[Any], final: Any) -> Any:
        self.at(var)
        value = self.var_value(var.idents[0])
        if len(var.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.idents[1:], args, final)

    def eval_chain(self, dot: Any, chain: ChainNode, args: list[Any], final: Any) -> Any:
        self.at(chain)
        if isinstance(chain.node, NilNode):
            raise self.errorf(f"indirection through explicit nil in {chain}")
        receiver = self.eval_arg(dot, "any", chain.node)
        return self.eval_field_chain(dot, receiver, chain, chain.fields, args, final)

    def eval_field_chain(
        self, dot: Any, receiver: Any, node: Node, idents: list[str], args: list[Any], final: Any
    ) -> Any:
        for ident in idents[:-1]:
            receiver = self.eval_field(dot, ident, node, [], _MISSING, receiver)
        return self.eval_field(dot, idents[-1], node, args, final, receiver)

    def eval_field(self, dot: Any, name: str, node: Node, args: list[Any], final: Any, receiver: Any) -> Any:
        if receiver is None:
            return None
        methods = getattr(receiver, "methods", None)
        if methods is not None:
            method = methods().get(name)
            if method is not None:
                return self.call(dot, method_function(method), node, name, args, final)
        has_args = len(args) > 1 or final is not _MISSING
        if isinstance(receiver, GoStruct):
            if name in receiver.fields:
                if has_args:
                    raise self.errorf(f"{name} has arguments but cannot be invoked as function")
                return receiver.fields[name]
        elif isinstance(receiver, dict):
            if has_args:
                raise self.errorf(f"{name} is not a method but has arguments")
            if name in receiver:
                return receiver[name]
            return getattr(receiver, "zero", None)
        raise self.errorf(f"can't evaluate field {name} in type {go_type(receiver)}")

    def eval_function(self, dot: Any, ident: IdentifierNode, cmd: CommandNode, args: list[Any], final: Any) -> Any:
        self.at(ident)
        fn = self.functions.get(ident.name)
        if fn is None:
            raise self.errorf(f'"{ident.name}" is not a defined function')
        return self.call(dot, fn, cmd, ident.name, args, final)

    def call(self, dot: Any, fn: Function, node: Node, name: str, args: list[Any], final: Any) -> Any:
        operands = args[1:] if args else []
        count = len(operands) + (0 if final is _MISSING else 1)
        nparams = len(fn.params)
        if fn.variadic:
            if count < nparams - 1:
                raise self.errorf(f"wrong number of args for {name}: want at least {nparams - 1} got {len(operands)}")
        elif count != nparams:
            raise self.errorf(f"wrong number of args for {name}: want {nparams} got {count}")

        def param(i: int) -> str:
            return fn.params[min(i, nparams - 1)] if fn.variadic else fn.params[i]

        if fn.fn is _and_or_marker:
            return self.and_or(dot, name, operands, final)
        values = [self.eval_arg(dot, param(i), arg) for i, arg in enumerate(operands)]
        if final is not _MISSING:
            values.append(self.validate(final, param(len(operands))))
        try:
            return fn.fn(*values)
        except (ExecError, _Break, _Continue, RecursionError):
            raise
        except GoError as exc:
            self.at(node)
            raise self.errorf(f"error calling {name}: {exc}") from None
        except Exception as exc:  # a Go panic inside a function, recovered as its error
            self.at(node)
            raise self.errorf(f"error calling {name}: {exc}") from None

    def and_or(self, dot: Any, name: str, operands: list[Any], final: Any) -> Any:
        value: Any = None
        want = name == "or"
        for arg in operands:
            value = self.eval_arg(dot, "any", arg)
            if truth(value) == want:
                return value
        if final is not _MISSING:
            value = final
        return value

    def validate(self, value: Any, typ: str) -> Any:
        if value is None:
            if typ in _NILLABLE:
                return None
            raise self.errorf(f"invalid value; expected {typ}")
        if not _assignable(value, typ):
            raise self.errorf(f"wrong type for value; expected {typ}; got {go_type(value)}")
        return value

    def eval_arg(self, dot: Any, typ: str, node: Any) -> Any:
        self.at(node)
        if isinstance(node, DotNode):
            return self.validate(dot, typ)
        if isinstance(node, NilNode):
            if typ in _NILLABLE:
                return None
            raise self.errorf(f"cannot assign nil to {typ}")
        if isinstance(node, FieldNode):
            return self.validate(self.eval_field_chain(dot, dot, node, node.idents, [node], _MISSING), typ)
        if isinstance(node, VariableNode):
            return self.validate(self.eval_variable(dot, node, [], _MISSING), typ)
        if isinstance(node, PipeNode):
            return self.validate(self.eval_pipeline(dot, node), typ)
        if isinstance(node, IdentifierNode):
            return self.validate(self.eval_function(dot, node, CommandNode(node.pos, [node]), [node], _MISSING), typ)
        if isinstance(node, ChainNode):
            return self.validate(self.eval_chain(dot, node, [], _MISSING), typ)
        if typ == "any":
            if isinstance(node, BoolNode):
                return node.value
            if isinstance(node, NumberNode):
                return node.value
            if isinstance(node, StringNode):
                return node.text
        elif typ == "string":
            if isinstance(node, StringNode):
                return node.text
            raise self.errorf(f"expected string; found {node}")
        elif typ == "float64":
            if isinstance(node, NumberNode) and node.is_float:
                return node.float_value
            raise self.errorf(f"expected float; found {node}")
        elif typ == "int":
            if isinstance(node, NumberNode) and node.is_int:
                return node.int_value
            raise self.errorf(f"expected integer; found {node}")
        elif typ == "bool":
            if isinstance(node, BoolNode):
                return node.value
            raise self.errorf(f"expected bool; found {node}")
        raise self.errorf(f"can't handle {node} for arg of type {typ}")


def _and_or_marker(*_: Any) -> Any:
    """Stands for ``and``/``or``, which the executor evaluates lazily itself."""
    raise AssertionError("and/or are evaluated by the executor")


def method_function(method: Method) -> Function:
    """A method seen as a function of its parameters."""
    return Function(method.fn, method.params)


def _map_key(key: Any) -> tuple[int, Any]:
    if isinstance(key, (int, float)) and not isinstance(key, bool):
        return (0, key)
    return (1, key)


# ---- builtins ------------------------------------------------------------------------------

def _basic_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, (str, Html)):
        return "string"
    return None


def _plain(value: Any) -> Any:
    return value.text if isinstance(value, Html) else value


def _eq(arg1: Any, *rest: Any) -> bool:
    if not rest:
        raise GoError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in rest:
        k2 = _basic_kind(arg)
        if k1 != k2:
            if arg1 is not None and arg is not None:
                raise GoError("incompatible types for comparison")
            continue
        if k1 is not None:
            if _plain(arg1) == _plain(arg):
                return True
            continue
        if arg1 is None or arg is None:
            if arg1 is None and arg is None:
                return True
            continue
        if isinstance(arg1, (dict, list)) or isinstance(arg, (dict, list)):
            raise GoError(f"non-comparable type {sprint_value(arg)}: {go_type(arg)}")
        if arg1 == arg:
            return True
    return False


def _lt(arg1: Any, arg2: Any) -> bool:
    k1, k2 = _basic_kind(arg1), _basic_kind(arg2)
    if k1 is None or k2 is None:
        raise GoError("invalid type for comparison")
    if k1 != k2:
        raise GoError("incompatible types for comparison")
    if k1 == "bool":
        raise GoError("invalid type for comparison")
    return bool(_plain(arg1) < _plain(arg2))


def _le(arg1: Any, arg2: Any) -> bool:
    return _lt(arg1, arg2) or _eq(arg1, arg2)


def _gt(arg1: Any, arg2: Any) -> bool:
    return not _le(arg1, arg2)


def _ge(arg1: Any, arg2: Any) -> bool:
    return not _lt(arg1, arg2)


def _ne(arg1: Any, arg2: Any) -> bool:
    return not _eq(arg1, arg2)


def _len(item: Any) -> int:
    if item is None:
        raise GoError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogatepass"))
    if isinstance(item, Html):
        return len(item.text.encode("utf-8", "surrogatepass"))
    if isinstance(item, (list, dict)):
        return len(item)
    raise GoError(f"len of type {go_type(item)}")


def _index_arg(index: Any, size: int) -> int:
    if index is None:
        raise GoError("cannot index slice/array with nil")
    if not isinstance(index, int) or isinstance(index, bool):
        raise GoError(f"cannot index slice/array with type {go_type(index)}")
    if index < 0 or index > size:
        raise GoError(f"index out of range: {index}")
    return index


def _index(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise GoError("index of untyped nil")
    for index in indexes:
        if item is None:
            raise GoError("index of nil pointer")
        if isinstance(item, (str, Html)):
            data = _plain(item).encode("utf-8", "surrogatepass")
            x = _index_arg(index, len(data))
            if x == len(data):
                raise GoError("reflect: string index out of range")
            item = data[x]
        elif isinstance(item, list):
            x = _index_arg(index, len(item))
            if x == len(item):
                raise GoError("reflect: slice index out of range")
            item = item[x]
        elif isinstance(item, dict):
            if not isinstance(index, str):
                raise GoError(f"value has type {go_type(index)}; should be string")
            item = item[index] if index in item else getattr(item, "zero", None)
        else:
            raise GoError(f"can't index item of type {go_type(item)}")
    return item


def _slice(item: Any, *indexes: Any) -> Any:
    if item is None:
        raise GoError("slice of untyped nil")
    if len(indexes) > 3:
        raise GoError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) > 2:
            raise GoError("cannot 3-index slice a string")
        data = item.encode("utf-8", "surrogatepass")
    elif isinstance(item, list):
        data = item
    else:
        raise GoError(f"can't slice item of type {go_type(item)}")
    bounds = [0, len(data)]
    for i, index in enumerate(indexes[:2]):
        bounds[i] = _index_arg(index, len(data))
    if bounds[0] > bounds[1]:
        raise GoError(f"invalid slice index: {bounds[0]} > {bounds[1]}")
    part = data[bounds[0] : bounds[1]]
    if isinstance(item, str):
        return bytes(part).decode("utf-8", "replace")
    return GoList(part)


def _not(arg: Any) -> bool:
    return not truth(arg)


def _eval_args(args: tuple[Any, ...]) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return sprint(list(args))


_HTML_ESCAPES = {'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "\x00": "\ufffd"}
_HTML_RE = re.compile("[\"'&<>\x00]")


def _html(*args: Any) -> str:
    return _HTML_RE.sub(lambda m: _HTML_ESCAPES[m.group(0)], _eval_args(args))


def _js(*args: Any) -> str:
    out: list[str] = []
    for ch in _eval_args(args):
        if ch in "\\'\"":
            out.append("\\" + ch)
        elif ch in "<>&=":
            out.append(f"\\u{ord(ch):04X}")
        elif ord(ch) < 0x20 or not ch.isprintable():
            out.append(f"\\u{ord(ch):04X}" if ord(ch) < 0x10000 else ch)
        else:
            out.append(ch)
    return "".join(out)


def _urlquery(*args: Any) -> str:
    return quote_plus(_eval_args(args), safe="")


def _print(*args: Any) -> str:
    return sprint(list(args))


def _printf(fmt: str, *args: Any) -> str:
    return sprintf(fmt, list(args))


def _println(*args: Any) -> str:
    return sprintln(list(args))


def _call(fn: Any, *args: Any) -> Any:
    raise GoError(f"non-function of type {go_type(fn)}")


BUILTINS: Mapping[str, Function] = {
    "and": Function(_and_or_marker, ("any", "any"), variadic=True),
    "or": Function(_and_or_marker, ("any", "any"), variadic=True),
    "not": Function(_not, ("any",)),
    "len": Function(_len, ("any",)),
    "index": Function(_index, ("any", "any"), variadic=True),
    "slice": Function(_slice, ("any", "any"), variadic=True),
    "print": Function(_print, ("any",), variadic=True),
    "printf": Function(_printf, ("string", "any"), variadic=True),
    "println": Function(_println, ("any",), variadic=True),
    "html": Function(_html, ("any",), variadic=True),
    "js": Function(_js, ("any",), variadic=True),
    "urlquery": Function(_urlquery, ("any",), variadic=True),
    "call": Function(_call, ("any", "any"), variadic=True),
    "eq": Function(_eq, ("any", "any"), variadic=True),
    "ne": Function(_ne, ("any", "any")),
    "lt": Function(_lt, ("any", "any")),
    "le": Function(_le, ("any", "any")),
    "gt": Function(_gt, ("any", "any")),
    "ge": Function(_ge, ("any", "any")),
}
"""Go's predefined template functions."""

__all__ = ["BUILTINS", "ExecError", "Executor", "Function"]
