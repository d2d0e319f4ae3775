"""Silences: matchers that mute alerts for a time, kept in the state store.

A silence is *pending* before ``starts_at``, *active* from ``starts_at`` to ``ends_at``
(inclusive, as in Alertmanager) and *expired* after. Expired silences stay listed for
``retention`` (Alertmanager's ``--data.retention``, 120 h) and are then deleted. Changing a
silence follows Alertmanager's ``Silences.Set``: an edit that keeps the matchers and does not
rewrite history updates it in place; any other edit expires it and creates a new one.

``Silencer`` is the ``Muter`` over them: an alert is muted when an active silence matches it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from daemon.clock import Clock, every
from daemon.dispatch.alerts import Marker
from daemon.re2 import RegexError, translate_re2
from daemon.store import StateStore
from daemon.tsdb.labels import Labels

KIND = "silence"
"""Document kind of silences in the state store (key: the silence id)."""

DEFAULT_RETENTION = 120 * 3600.0

PENDING, ACTIVE, EXPIRED = "pending", "active", "expired"

_OPERATORS = {(True, False): "=", (False, False): "!=", (True, True): "=~", (False, True): "!~"}
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

log = structlog.get_logger("alertd.silence")


class SilenceError(ValueError):
    """A silence that cannot be set or expired; the message is Alertmanager's."""


class SilenceNotFound(SilenceError):
    """No silence has the given id."""

    def __init__(self, silence_id: str = "") -> None:
        super().__init__("not found")
        self.silence_id = silence_id


@dataclass(frozen=True)
class SilenceMatcher:
    """One matcher of a silence, in the API's terms: ``name``, ``value``, ``is_regex``, ``is_equal``.

    A label the alert does not have counts as the empty string. Regexes are anchored at both
    ends (``^(?:value)$``) and use RE2 syntax, as in Alertmanager.
    """

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True
    _regex: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.is_regex:
            try:
                pattern = re.compile(translate_re2(self.value), re.ASCII)
            except (RegexError, re.error, OverflowError, RecursionError) as exc:
                raise SilenceError(f"invalid regular expression {_go_quote(self.value)}: {exc}") from None
            object.__setattr__(self, "_regex", pattern)

    @property
    def operator(self) -> str:
        """``=``, ``!=``, ``=~`` or ``!~``."""
        return _OPERATORS[(self.is_equal, self.is_regex)]

    def matches(self, value: str) -> bool:
        if self._regex is not None:
            found = self._regex.fullmatch(value) is not None
        else:
            found = value == self.value
        return found if self.is_equal else not found

    def validate(self) -> str | None:
        """Why Alertmanager would refuse the matcher, or None."""
        if not _LABEL_NAME.fullmatch(self.name):
            return f"invalid label name {_go_quote(self.name)}"
        return None

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{self.name}{self.operator}"{escaped}"'

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "isRegex": self.is_regex, "isEqual": self.is_equal}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> SilenceMatcher:
        """A matcher from the API's JSON (``isEqual`` defaults to true); SilenceError if malformed."""
        if not isinstance(doc, Mapping):
            raise SilenceError("matcher must be an object")
        name, value = doc.get("name"), doc.get("value")
        is_regex, is_equal = doc.get("isRegex", False), doc.get("isEqual", True)
        if not isinstance(name, str) or not isinstance(value, str):
            raise SilenceError("matcher needs a string name and value")
        if not isinstance(is_regex, bool) or not isinstance(is_equal, bool):
            raise SilenceError("matcher isRegex and isEqual must be booleans")
        return cls(name=name, value=value, is_regex=is_regex, is_equal=is_equal)


@dataclass(frozen=True)
class Silence:
    """A silence: it mutes alerts that every matcher matches while it is active."""

    matchers: tuple[SilenceMatcher, ...]
    starts_at: float
    ends_at: float
    created_by: str = ""
    comment: str = ""
    id: str = ""
    updated_at: float = 0.0

    def state(self, now: float) -> str:
        """``pending``, ``active`` or ``expired`` at ``now``."""
        if now < self.starts_at:
            return PENDING
        if now > self.ends_at:
            return EXPIRED
        return ACTIVE

    def matches(self, labels: Labels | Mapping[str, str]) -> bool:
        """Whether every matcher matches the label set (missing labels are empty)."""
        return all(m.matches(labels.get(m.name, "")) for m in self.matchers)

    def validate(self) -> str | None:
        """Why Alertmanager would refuse the silence (``validateSilence``), or None."""
        if not self.matchers:
            return "at least one matcher required"
        for i, matcher in enumerate(self.matchers):
            problem = matcher.validate()
            if problem:
                return f"invalid label matcher {i}: {problem}"
        if self.starts_at <= 0:
            return "invalid zero start timestamp"
        if self.ends_at <= 0:
            return "invalid zero end timestamp"
        if self.ends_at < self.starts_at:
            return "end time must not be before start time"
        return None

    def to_document(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [m.to_json() for m in self.matchers],
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "updated_at": self.updated_at,
            "created_by": self.created_by,
            "comment": self.comment,
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Silence:
        """The silence a ``to_document`` result describes (raises on malformed input)."""
        return cls(
            id=str(doc["id"]),
            matchers=tuple(SilenceMatcher.from_json(m) for m in doc["matchers"]),
            starts_at=float(doc["starts_at"]),
            ends_at=float(doc["ends_at"]),
            updated_at=float(doc.get("updated_at", 0.0)),
            created_by=str(doc.get("created_by", "")),
            comment=str(doc.get("comment", "")),
        )


class Silences:
    """The set of silences, persisted in a ``StateStore`` under kind ``silence``.

    Every change is written through before the call returns, so silences survive a restart.
    ``version`` grows with every change (the silencer caches its answers per version).
    ``new_id`` makes silence ids (UUID4 by default; tests inject predictable ones).
    """

    def __init__(
        self,
        store: StateStore,
        clock: Clock,
        *,
        retention: float = DEFAULT_RETENTION,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._store = store
        self._clock = clock
        self.retention = retention
        self._new_id = new_id
        self._silences: dict[str, Silence] = {}
        self.version = 0
        for key, doc in store.load(KIND).items():
            try:
                silence = Silence.from_document(doc)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("silence_unreadable", id=key, error=str(exc))
                continue
            self._silences[silence.id] = silence

    def __len__(self) -> int:
        return len(self._silences)

    def get(self, silence_id: str) -> Silence | None:
        return self._silences.get(silence_id)

    def query(
        self,
        *,
        ids: Iterable[str] | None = None,
        states: Iterable[str] | None = None,
        labels: Labels | Mapping[str, str] | None = None,
    ) -> list[Silence]:
        """Silences with one of ``ids``, in one of ``states`` (at the clock's now) and matching ``labels``."""
        now = self._clock.time()
        wanted_ids = set(ids) if ids is not None else None
        wanted_states = set(states) if states is not None else None
        found = []
        for silence in self._silences.values():
            if wanted_ids is not None and silence.id not in wanted_ids:
                continue
            if wanted_states is not None and silence.state(now) not in wanted_states:
                continue
            if labels is not None and not silence.matches(labels):
                continue
            found.append(silence)
        return found

    def set(self, silence: Silence) -> str:
        """Create or change a silence; returns its id (a new one unless updated in place).

        ``SilenceNotFound`` when ``silence.id`` is given but unknown; ``SilenceError`` when the
        silence is invalid. A start in the past becomes now for a new silence.
        """
        now = self._clock.time()
        previous = self._silences.get(silence.id) if silence.id else None
        if silence.id and previous is None:
            raise SilenceNotFound(silence.id)
        if previous is not None:
            if _can_update(previous, silence, now):
                self._write(replace(silence, updated_at=now))
                return silence.id
            if previous.state(now) != EXPIRED:
                self._expire(previous, now)
        created = replace(silence, id=self._new_id(), starts_at=max(silence.starts_at, now), updated_at=now)
        self._write(created)
        return created.id

    def expire(self, silence_id: str) -> None:
        """End a silence now (a pending one never starts). Errors as Alertmanager's ``Expire``."""
        silence = self._silences.get(silence_id)
        if silence is None:
            raise SilenceNotFound(silence_id)
        now = self._clock.time()
        if silence.state(now) == EXPIRED:
            raise SilenceError(f"silence {silence_id} already expired")
        self._expire(silence, now)

    def gc(self) -> int:
        """Delete silences expired longer than ``retention`` ago; returns how many."""
        now = self._clock.time()
        old = [s.id for s in self._silences.values() if s.ends_at + self.retention < now]
        if old:
            with self._store.transaction():
                for silence_id in old:
                    self._store.delete(KIND, silence_id)
            for silence_id in old:
                del self._silences[silence_id]
            self.version += 1
        return len(old)

    async def run_gc(self, interval: float = 15 * 60.0) -> None:
        """Run ``gc`` every ``interval`` on the clock, forever (Alertmanager's maintenance loop)."""
        await every(self._clock, interval, self.gc)

    def _expire(self, silence: Silence, now: float) -> None:
        if silence.state(now) == PENDING:
            silence = replace(silence, starts_at=now, ends_at=now)
        else:
            silence = replace(silence, ends_at=now)
        self._write(replace(silence, updated_at=now))

    def _write(self, silence: Silence) -> None:
        problem = silence.validate()
        if problem:
            raise SilenceError(f"silence invalid: {problem}")
        self._store.put(KIND, silence.id, silence.to_document())
        self._silences[silence.id] = silence
        self.version += 1


def _can_update(old: Silence, new: Silence, now: float) -> bool:
    # Alertmanager's canUpdate: history (what was muted when) must not change.
    if old.matchers != new.matchers:
        return False
    state = old.state(now)
    if state == ACTIVE:
        return new.starts_at == old.starts_at and new.ends_at >= now
    if state == PENDING:
        return new.starts_at >= now
    return False


class Silencer:
    """The ``Muter`` of silences: ``mutes(labels)`` is true when an active silence matches.

    Each answer is recorded in ``marker`` (the ids of the silences muting the alert), which
    the API reads as the alert's ``silencedBy``.
    """

    def __init__(self, silences: Silences, marker: Marker) -> None:
        self._silences = silences
        self._marker = marker

    def mutes(self, labels: Labels) -> bool:
        active = self._silences.query(states=(ACTIVE,), labels=labels)
        ids = sorted(s.id for s in active)
        self._marker.set_silenced(labels, ids)
        return bool(ids)


def sort_for_listing(silences: Sequence[Silence], now: float) -> list[Silence]:
    """Alertmanager's API order: active (soonest end first), pending (soonest start first),
    then expired (latest end first)."""
    order = {ACTIVE: 0, PENDING: 1, EXPIRED: 2}

    def key(s: Silence) -> tuple[int, float]:
        state = s.state(now)
        if state == ACTIVE:
            return (0, s.ends_at)
        if state == PENDING:
            return (1, s.starts_at)
        return (order[state], -s.ends_at)

    return sorted(silences, key=key)


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
