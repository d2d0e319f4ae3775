"""Secrets: values that are used but never shown, from the file itself, ``${ENV}`` or a ``*_file``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import PydanticCustomError, core_schema

REDACTED = "<secret>"
_REFERENCE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Secret:
    """A password, token or credential. ``str``/``repr`` give ``<secret>``; ``reveal()`` the value.

    Equal secrets compare equal so that an unchanged job config is recognised across reloads.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return REDACTED

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(
            _validate_secret,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda _: REDACTED),
        )


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` by the variable's value; ``$${`` stands for a literal ``${``.

    Raises ``KeyError`` naming the first variable that is not set.
    """

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "${"
        if name not in env:
            raise KeyError(name)
        return env[name]

    return _REFERENCE.sub(substitute, text)


def environment(context: Any) -> Mapping[str, str]:
    """The environment secrets are expanded from: the validation context's, else the process's."""
    if isinstance(context, dict) and context.get("env") is not None:
        env: Mapping[str, str] = context["env"]
        return env
    return os.environ


def read_secret_file(path: str) -> Secret:
    """A secret read from a file, surrounding whitespace removed as Prometheus does.

    Raises ``OSError`` or ``UnicodeDecodeError`` when the file cannot be read.
    """
    return Secret(Path(path).read_text(encoding="utf-8").strip())


def _validate_secret(value: Any, info: core_schema.ValidationInfo) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise PydanticCustomError("string_type", "Input should be a valid string")
    try:
        return Secret(expand_env(value, environment(info.context)))
    except KeyError as exc:
        raise PydanticCustomError(
            "secret_env", "environment variable {name} is not set", {"name": str(exc.args[0])}
        ) from None
