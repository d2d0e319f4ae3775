"""Reading Prometheus' YAML files (rule files, rule test files) as its Go decoder reads them.

Both files are checked as strictly as Prometheus checks them and in its wording, and every
problem is reported, not only the first, as one ``FILE:LINE: message`` line.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from daemon.config.duration import parse_duration
from daemon.config.errors import ConfigError
from daemon.config.yamlsrc import KeyPath, YamlDocument, load_yaml


class YamlFileError(Exception):
    """A file that did not load; ``issues`` holds every problem as ``FILE:LINE: message``."""

    def __init__(self, issues: Sequence[str]) -> None:
        self.issues: tuple[str, ...] = tuple(issues)
        super().__init__("\n".join(self.issues))


_Issues = TypeVar("_Issues", bound=YamlFileError)


def load_document(text: str, file: str, error: type[_Issues]) -> YamlDocument:
    """``text`` parsed with the line of every key, or ``error`` naming its YAML syntax problems."""
    try:
        return load_yaml(text, file)
    except ConfigError as exc:
        raise error([str(issue) for issue in exc.issues]) from None


class FieldReader:
    """Reads typed fields out of one document, collecting problems in ``issues`` instead of stopping.

    Each accessor takes the key path of the mapping it reads from, so a problem names the line of
    the offending key (or of its nearest ancestor, for a missing one), and returns an empty value
    after recording a problem, so that reading carries on.
    """

    def __init__(self, doc: YamlDocument, file: str) -> None:
        self.doc = doc
        self.file = file
        self.issues: list[str] = []

    def issue(self, path: KeyPath, message: str, line: int | None = None) -> None:
        if line is None:
            line = self.doc.line_of(path)
        self.issues.append(f"{self.file}:{line}: {message}" if line else f"{self.file}: {message}")

    def unknown_keys(self, path: KeyPath, data: dict[str, Any], known: Sequence[str], go_type: str) -> None:
        for key in data:
            if key not in known:
                self.issue((*path, key), f"field {key} not found in type {go_type}")

    def string(self, path: KeyPath, data: dict[str, Any], key: str) -> str:
        value = data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.issue((*path, key), f"cannot unmarshal {go_kind(value)} into string ({key})")
            return ""
        return value

    def duration(self, path: KeyPath, data: dict[str, Any], key: str) -> float:
        """A Prometheus duration in seconds; 0 when absent."""
        text = self.string(path, data, key)
        if text == "":
            return 0.0
        try:
            return parse_duration(text)
        except ValueError as exc:
            self.issue((*path, key), f"{key}: {exc}")
            return 0.0

    def string_values(self, path: KeyPath, key: str, mapping: dict[Any, Any]) -> dict[str, str]:
        """The ``map[string]string`` at ``(*path, key)``, already known to be a mapping; null is ``""``."""
        result: dict[str, str] = {}
        for name, item in mapping.items():
            if item is None:
                item = ""
            if not isinstance(item, str):
                self.issue((*path, key, name), f"cannot unmarshal {go_kind(item)} into string ({key}.{name})")
                continue
            result[name] = item
        return result


def go_kind(value: Any) -> str:
    """Go YAML's name for what was found where something else was expected."""
    if isinstance(value, dict):
        return "!!map"
    if isinstance(value, list):
        return "!!seq"
    return f"!!str `{value}`"
