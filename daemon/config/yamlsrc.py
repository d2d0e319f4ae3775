"""YAML that remembers where each key came from, so that errors can name a line.

Scalars stay text (only ``null`` and merge keys ``<<`` are resolved): the models decide what a
value means, so ``version: 1.10`` stays ``"1.10"`` as it does in Prometheus' Go YAML decoder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from daemon.config.errors import ConfigError, ConfigIssue

KeyPath = tuple[str | int, ...]

_KEPT_TAGS = frozenset({"tag:yaml.org,2002:null", "tag:yaml.org,2002:merge"})
# Deep enough for any real config; stops a recursive alias from walking forever.
_MAX_DEPTH = 64


class _TextLoader(yaml.SafeLoader):
    yaml_implicit_resolvers = {
        first: [(tag, pattern) for tag, pattern in resolvers if tag in _KEPT_TAGS]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


@dataclass(frozen=True)
class YamlDocument:
    """A parsed document: plain data plus the 1-based line of every key path in it."""

    source: str
    data: Any
    lines: dict[KeyPath, int] = field(default_factory=dict)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, or of its nearest ancestor that exists (for a missing key)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def load_yaml(text: str, source: str) -> YamlDocument:
    """Parse one YAML document, raising ``ConfigError`` for syntax errors and duplicate keys."""
    loader = _TextLoader(text)
    try:
        node = loader.get_single_node()
        duplicates = _duplicate_keys(node, source) if node is not None else []
        if duplicates:
            raise ConfigError(duplicates)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_syntax_issue(exc, source)]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigIssue(source, None, "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    lines: dict[KeyPath, int] = {}
    if node is not None:
        _record_lines(node, (), lines, 0)
    return YamlDocument(source, data, lines)


def _syntax_issue(exc: yaml.MarkedYAMLError, source: str) -> ConfigIssue:
    # Only the parser's words and position: the offending line itself may hold a password.
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    words = " ".join(part for part in (exc.context, exc.problem) if part)
    return ConfigIssue(source, line, "", f"invalid YAML: {words or 'syntax error'}")


def _key_text(node: yaml.Node) -> str | None:
    return node.value if isinstance(node, yaml.ScalarNode) else None


def _record_lines(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int], depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = _key_text(key_node)
            if key is None:
                continue
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines, depth + 1)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, index), lines, depth + 1)


def _duplicate_keys(root: yaml.Node, source: str) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node, path: KeyPath) -> None:
        if id(node) in seen_nodes or len(path) > _MAX_DEPTH:
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first_line: dict[str, int] = {}
            for key_node, value_node in node.value:
                key = _key_text(key_node)
                if key is None:
                    issues.append(
                        ConfigIssue(source, key_node.start_mark.line + 1, _dotted(path), "keys must be plain strings")
                    )
                    continue
                line = key_node.start_mark.line + 1
                # Merge keys may repeat, and what they bring in may be overridden: that is YAML.
                if key != "<<" or key_node.tag != "tag:yaml.org,2002:merge":
                    if key in first_line:
                        issues.append(
                            ConfigIssue(
                                source, line, _dotted((*path, key)), f"duplicate key (first at line {first_line[key]})"
                            )
                        )
                    else:
                        first_line[key] = line
                walk(value_node, (*path, key))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))

    walk(root, ())
    return issues


def _dotted(path: KeyPath) -> str:
    return ".".join(str(part) for part in path)
