"""The ``relabel_config`` model, with Prometheus' defaults and validation errors."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from daemon.re2 import RegexError, compile_re2
from daemon.config.section import LABEL_NAME, Section, check_label_name, field_error

Action = Literal[
    "replace",
    "keep",
    "drop",
    "keepequal",
    "dropequal",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
]
ACTIONS: tuple[str, ...] = Action.__args__  # type: ignore[attr-defined]

DEFAULT_REGEX = "(.*)"
DEFAULT_REPLACEMENT = "$1"
DEFAULT_SEPARATOR = ";"

# A target_label that may hold $1 / ${name} references (Prometheus' legacy name rule).
_TARGET_WITH_VARS = re.compile(r"(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+")


class RelabelConfig(Section):
    """One ``relabel_config`` entry, with Prometheus' defaults and validation."""

    source_labels: list[str] = Field(default_factory=list)
    separator: str = DEFAULT_SEPARATOR
    target_label: str = ""
    regex: str = DEFAULT_REGEX
    modulus: Annotated[int, Field(ge=0, lt=2**64)] = 0
    replacement: str = DEFAULT_REPLACEMENT
    action: Action = "replace"

    @field_validator("action", mode="before")
    @classmethod
    def _known_action(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.lower() not in ACTIONS:
                raise ValueError(f'unknown relabel action "{value}"')
            return value.lower()
        return value

    @field_validator("source_labels")
    @classmethod
    def _valid_source_labels(cls, names: list[str]) -> list[str]:
        for name in names:
            check_label_name(name)
        return names

    @field_validator("regex")
    @classmethod
    def _valid_regex(cls, pattern: str) -> str:
        try:
            compile_re2(pattern)
        except RegexError as exc:
            raise ValueError(str(exc)) from None
        return pattern

    @model_validator(mode="after")
    def _consistent(self) -> RelabelConfig:
        action = self.action
        if action == "hashmod" and self.modulus == 0:
            raise field_error("modulus", "relabel configuration for hashmod requires non-zero modulus")
        needs_target = action in ("replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal")
        if needs_target and not self.target_label:
            raise field_error("target_label", f"relabel configuration for {action} action requires 'target_label' value")
        if action == "replace":
            rule = _TARGET_WITH_VARS if "$" in self.target_label else LABEL_NAME
            if not rule.fullmatch(self.target_label):
                raise field_error("target_label", f'"{self.target_label}" is invalid \'target_label\' for {action} action')
        if action in ("lowercase", "uppercase", "keepequal", "dropequal", "hashmod"):
            if not LABEL_NAME.fullmatch(self.target_label):
                raise field_error("target_label", f'"{self.target_label}" is invalid \'target_label\' for {action} action')
        if action in ("lowercase", "uppercase", "keepequal", "dropequal") and self.replacement != DEFAULT_REPLACEMENT:
            raise field_error("replacement", f"'replacement' can not be set for {action} action")
        if action == "labelmap" and not _TARGET_WITH_VARS.fullmatch(self.replacement):
            raise field_error("replacement", f'"{self.replacement}" is invalid \'replacement\' for {action} action')
        if action in ("keepequal", "dropequal") and (
            self.regex != DEFAULT_REGEX or self.modulus != 0 or self.separator != DEFAULT_SEPARATOR
        ):
            raise field_error(None, f"{action} action requires only 'source_labels' and 'target_label', and no other fields")
        if action in ("labeldrop", "labelkeep") and (
            "source_labels" in self.model_fields_set
            or self.target_label
            or self.modulus != 0
            or self.separator != DEFAULT_SEPARATOR
            or self.replacement != DEFAULT_REPLACEMENT
        ):
            raise field_error(None, f"{action} action requires only 'regex', and no other fields")
        return self


