"""The base of every config section: strict about keys, immutable, and able to name a bad field."""

from __future__ import annotations

import os
import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

FIELD_ERROR = "alertd_field"
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


class Section(BaseModel):
    """A mapping in the config file.

    Unknown keys are errors; keys a Prometheus or Alertmanager file may hold but alertd does not
    implement are listed in ``unsupported`` so that the error says so instead of "unknown key".
    A key given as null (``labels:`` with nothing after it) means "use the default", as in Go.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    unsupported: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


    def _settle(self, **changes: Any) -> None:
        """Fill in derived values while the section is being validated (before anyone sees it)."""
        for name, value in changes.items():
            # Frozen models refuse setattr; this is their own validator completing them.
            object.__setattr__(self, name, value)


def field_error(field: str | None, message: str) -> PydanticCustomError:
    """An error a section validator raises about one of its fields (dotted, relative) or itself."""
    return PydanticCustomError(FIELD_ERROR, "{message}", {"message": message, "field": field})


def check_label_name(name: str) -> str:
    """``name`` if it is a valid label name, else ``ValueError`` in Prometheus' words."""
    if not LABEL_NAME.fullmatch(name):
        raise ValueError(f'"{name}" is not a valid label name')
    return name


def base_dir(context: Any) -> str | None:
    """The directory relative file names in the config are resolved against (the config file's)."""
    if isinstance(context, dict):
        value = context.get("base_dir")
        return value if isinstance(value, str) else None
    return None


def join_dir(directory: str | None, path: str) -> str:
    """``path`` relative to ``directory`` unless it is absolute or empty, as Prometheus' JoinDir."""
    if not path or directory is None or os.path.isabs(path):
        return path
    return os.path.join(directory, path)
