"""What a config file did wrong, said once per problem with the file, line and key path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file.

    ``line`` is 1-based (``None`` when no line is known); ``path`` is the dotted key path
    (``scrape_configs.0.scrape_timeout``), empty for problems of the file as a whole.
    """

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """A config file could not be loaded; ``issues`` lists every problem found, in file order."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues: tuple[ConfigIssue, ...] = tuple(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))
