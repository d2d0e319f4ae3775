"""Reading a config file: YAML with lines, validation, and every problem turned into a ``ConfigIssue``."""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Mapping
from importlib import resources
from typing import Any

from pydantic import BaseModel, ValidationError

from daemon.config.errors import ConfigError, ConfigIssue
from daemon.config.model import DEFAULT_SOURCE, SEE_ALSO, Config
from daemon.config.section import FIELD_ERROR, Section
from daemon.config.yamlsrc import KeyPath, YamlDocument, load_yaml

DEFAULT_CONFIG_RESOURCE = "default.yml"

# pydantic's wording for the common mistakes, said the way a config file's reader thinks.
_MESSAGES = {
    "missing": "missing required key",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def parse_config(
    text: str,
    source: str = "<string>",
    *,
    env: Mapping[str, str] | None = None,
    base_dir: str | None = None,
) -> Config:
    """The config in ``text``; ``source`` names it in errors.

    ``env`` is where ``${VAR}`` in secret fields is looked up (the process environment by
    default); relative ``*_file`` paths and globs are resolved against ``base_dir`` (the current
    directory when ``None``). Raises ``ConfigError`` listing every problem found.
    """
    document = load_yaml(text, source)
    if document.data is not None and not isinstance(document.data, dict):
        raise ConfigError([ConfigIssue(source, document.line_of(()), "", "the config must be a mapping of sections")])
    context = {"env": env, "base_dir": base_dir}
    try:
        return Config.from_data(document.data, source, context)
    except ValidationError as exc:
        raise ConfigError(issues_from(exc, document, Config)) from None


def load_config(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Config:
    """The config file at ``path``; relative file names in it are relative to its directory."""
    source = os.fspath(path)
    try:
        with open(source, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise ConfigError([ConfigIssue(source, None, "", f"cannot read config file: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError:
        raise ConfigError([ConfigIssue(source, None, "", "cannot read config file: not UTF-8 text")]) from None
    return parse_config(text, source, env=env, base_dir=os.path.dirname(os.path.abspath(source)))


def load_default_config() -> Config:
    """The embedded config ``alertd run`` uses when given none: itself plus the demo exporter."""
    folder = resources.files("daemon.config")
    text = folder.joinpath(DEFAULT_CONFIG_RESOURCE).read_text(encoding="utf-8")
    # Its rule file sits beside it in the package.
    return parse_config(text, DEFAULT_SOURCE, base_dir=str(folder))


def issues_from(exc: ValidationError, document: YamlDocument, root: type[BaseModel]) -> list[ConfigIssue]:
    """One ``ConfigIssue`` per validation error, with the line of its key, in file order."""
    issues: list[ConfigIssue] = []
    for error in exc.errors(include_url=False, include_input=False):
        path: KeyPath = tuple(part for part in error["loc"] if part != "[key]")
        context = error.get("ctx") or {}
        kind = error["type"]
        if kind == FIELD_ERROR:
            if context.get("field"):
                path = (*path, *str(context["field"]).split("."))
            message = str(context["message"])
            see = context.get(SEE_ALSO)
            if see is not None and document.line_of(tuple(see)) is not None:
                message += f" (line {document.line_of(tuple(see))})"
        elif kind == "extra_forbidden":
            message = _unknown_key_message(root, path)
        else:
            message = _MESSAGES.get(kind) or _plain(error["msg"])
        issues.append(ConfigIssue(document.source, document.line_of(path), _dotted(path), message))
    issues.sort(key=lambda issue: (issue.line or 0, issue.path))
    return issues


def _plain(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    if message.startswith("Input should be "):
        return "must be " + message[len("Input should be ") :]
    return message


def _dotted(path: KeyPath) -> str:
    return ".".join(str(part) for part in path)


def _unknown_key_message(root: type[BaseModel], path: KeyPath) -> str:
    section = _section_at(root, path[:-1])
    key = str(path[-1]) if path else ""
    if section is None:
        return "unknown key"
    if issubclass(section, Section) and key in section.unsupported:
        return "not supported by alertd"
    if key.endswith("_sd_configs"):
        return "this service discovery is not supported by alertd (use static_configs or file_sd_configs)"
    known = [info.alias or name for name, info in section.model_fields.items()]
    close = difflib.get_close_matches(key, known, n=1)
    return f"unknown key (did you mean {close[0]}?)" if close else "unknown key"


def _section_at(root: type[BaseModel], path: KeyPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at ``path`` (walking lists, dicts, optionals)."""
    current: Any = root
    for part in path:
        current = _unwrap(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {info.alias or name: info for name, info in current.model_fields.items()}
            if part not in fields:
                return None
            current = fields[str(part)].annotation
        elif typing.get_origin(current) in (list, tuple):
            current = typing.get_args(current)[0]
        elif typing.get_origin(current) is dict:
            current = typing.get_args(current)[1]
        else:
            return None
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
        else:
            return annotation
