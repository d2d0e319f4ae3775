"""Targets: from discovered groups to scrape URLs and target labels, as Prometheus' populateLabels.

A discovered group (addresses plus shared labels, from ``static_configs`` or a file_sd file)
gets the job's settings as ``__scheme__``/``__metrics_path__``/``__scrape_interval__``/... labels,
goes through ``relabel_configs``, and what survives becomes a ``Target``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

from daemon.config.duration import format_duration, parse_duration
from daemon.config.errors import ConfigError
from daemon.config.scrape import ScrapeConfig
from daemon.config.section import LABEL_NAME
from daemon.config.yamlsrc import KeyPath, load_yaml
from daemon.scrape.relabel import Relabeler
from daemon.tsdb.labels import Labels

ADDRESS = "__address__"
SCHEME = "__scheme__"
METRICS_PATH = "__metrics_path__"
SCRAPE_INTERVAL = "__scrape_interval__"
SCRAPE_TIMEOUT = "__scrape_timeout__"
PARAM_PREFIX = "__param_"
META_PREFIX = "__meta_"
RESERVED_PREFIX = "__"
FILE_PATH = "__meta_filepath"


class TargetError(ValueError):
    """A discovered target that cannot be scraped (no address, bad interval, ...)."""


class FileSDError(Exception):
    """A file_sd file that cannot be used; the message names the file (and line, when known)."""


@dataclass(frozen=True)
class TargetGroup:
    """Addresses sharing a set of labels, as a discovery mechanism reports them.

    ``source`` identifies the group within its discovery (``static:0``, ``targets.yml:2``) so
    that an update can replace exactly the groups it came from.
    """

    targets: Sequence[str]
    labels: Mapping[str, str] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        object.__setattr__(self, "labels", dict(self.labels))


@dataclass(frozen=True)
class Target:
    """One thing to scrape.

    ``labels`` are the final target labels (job, instance, user labels; none starting with
    ``__``) attached to every scraped series; ``discovered`` are the labels before relabelling
    (for ``/api/v1/targets``). ``key`` is stable across reloads for the same URL and labels.
    """

    job: str
    labels: Labels
    discovered: Labels
    url: str
    interval: float
    timeout: float
    key: str

    def offset(self, interval: float | None = None) -> float:
        """Where in each interval this target is scraped, in seconds: spreads targets out evenly."""
        period = self.interval if interval is None else interval
        return (int(self.key, 16) % 1_000_000) / 1_000_000 * period


@dataclass(frozen=True)
class DroppedTarget:
    """A discovered target that is not scraped: ``reason`` is ``None`` when relabelling dropped it."""

    discovered: Labels
    reason: str | None = None


@dataclass(frozen=True)
class TargetSet:
    """The outcome of turning a job's discovered groups into targets."""

    active: tuple[Target, ...]
    dropped: tuple[DroppedTarget, ...]


def static_groups(job: ScrapeConfig) -> list[TargetGroup]:
    """The groups of a job's ``static_configs``."""
    return [
        TargetGroup(static.targets, static.labels, f"static:{index}") for index, static in enumerate(job.static_configs)
    ]


def targets_for(job: ScrapeConfig, groups: Sequence[TargetGroup]) -> list[Target]:
    """The targets to scrape for ``job`` from ``groups``, duplicates removed, in discovery order."""
    return list(resolve_targets(job, groups).active)


def resolve_targets(job: ScrapeConfig, groups: Sequence[TargetGroup], relabeler: Relabeler | None = None) -> TargetSet:
    """Like ``targets_for``, also reporting what was dropped and why."""
    relabeler = relabeler if relabeler is not None else Relabeler(job.relabel_configs)
    active: dict[str, Target] = {}
    dropped: list[DroppedTarget] = []
    for group in groups:
        for address in group.targets:
            discovered = discovered_labels(job, {ADDRESS: address}, group.labels)
            try:
                target = populate_target(job, relabeler, discovered)
            except TargetError as exc:
                dropped.append(DroppedTarget(Labels.of(discovered), str(exc)))
                continue
            if target is None:
                dropped.append(DroppedTarget(Labels.of(discovered)))
            else:
                active.setdefault(target.key, target)
    return TargetSet(tuple(active.values()), tuple(dropped))


def discovered_labels(
    job: ScrapeConfig, target_labels: Mapping[str, str], group_labels: Mapping[str, str]
) -> dict[str, str]:
    """A target's labels before relabelling: its own, its group's, then the job's settings."""
    labels = {name: value for name, value in target_labels.items() if value}
    for name, value in group_labels.items():
        if name not in labels and value:
            labels[name] = value
    for name, value in (
        ("job", job.job_name),
        (SCRAPE_INTERVAL, format_duration(job.scrape_interval)),
        (SCRAPE_TIMEOUT, format_duration(job.scrape_timeout)),
        (METRICS_PATH, job.metrics_path),
        (SCHEME, job.scheme),
    ):
        if not labels.get(name) and value:
            labels[name] = value
    for name, values in job.params.items():
        param = PARAM_PREFIX + name
        if values and not labels.get(param) and values[0]:
            labels[param] = values[0]
    return labels


def populate_target(job: ScrapeConfig, relabeler: Relabeler, discovered: Mapping[str, str]) -> Target | None:
    """The target for one discovered label set; ``None`` if relabelling drops it.

    Raises ``TargetError`` when what relabelling leaves cannot be scraped.
    """
    relabelled = relabeler.apply(dict(discovered))
    if relabelled is None:
        return None
    address = relabelled.get(ADDRESS, "")
    if not address:
        raise TargetError("no address")
    if "/" in address:
        raise TargetError(f'"{address}" is not a valid hostname')
    interval = _duration(relabelled.get(SCRAPE_INTERVAL, ""), "scrape interval")
    timeout = _duration(relabelled.get(SCRAPE_TIMEOUT, ""), "scrape timeout")
    if timeout > interval:
        raise TargetError(
            f'scrape timeout cannot be greater than scrape interval ("{relabelled[SCRAPE_TIMEOUT]}" > '
            f'"{relabelled[SCRAPE_INTERVAL]}")'
        )
    scheme = relabelled.get(SCHEME, "")
    if scheme not in ("http", "https"):
        raise TargetError(f'unsupported scheme "{scheme}"')
    for name in [name for name in relabelled if name.startswith(META_PREFIX)]:
        del relabelled[name]
    relabelled.setdefault("instance", address)
    for name in relabelled:
        if not LABEL_NAME.fullmatch(name):
            raise TargetError(f'invalid label name "{name}"')
    url = _url(scheme, address, relabelled.get(METRICS_PATH, ""), _params(job, relabelled))
    labels = Labels.of((name, value) for name, value in relabelled.items() if not name.startswith(RESERVED_PREFIX))
    key = hashlib.sha256(f"{url}\x00{labels}".encode()).hexdigest()[:16]
    return Target(job.job_name, labels, Labels.of(discovered), url, interval, timeout, key)


def _duration(text: str, what: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise TargetError(f"error parsing {what}: {exc}") from None
    if seconds == 0:
        raise TargetError(f"{what} cannot be 0")
    return seconds


def _params(job: ScrapeConfig, labels: Mapping[str, str]) -> dict[str, list[str]]:
    params = {name: list(values) for name, values in job.params.items()}
    for name, value in labels.items():
        if name.startswith(PARAM_PREFIX):
            key = name[len(PARAM_PREFIX) :]
            if params.get(key):
                params[key][0] = value
            else:
                params[key] = [value]
    return params


def _url(scheme: str, address: str, path: str, params: Mapping[str, list[str]]) -> str:
    # Escaped as Go's net/url does, so URLs read the same as in Prometheus' target list.
    if path and not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{address}{quote(path, safe='/$&+,:;=@')}"
    query = "&".join(
        f"{quote_plus(name, safe='')}={quote_plus(value, safe='')}" for name in sorted(params) for value in params[name]
    )
    return f"{url}?{query}" if query else url


# --- file_sd files -------------------------------------------------------------------------------


def parse_file_sd(path: str) -> list[TargetGroup]:
    """The target groups in a Prometheus file_sd file (JSON, or YAML for ``.yml``/``.yaml``).

    Each group gets ``__meta_filepath`` and the source ``<path>:<index>``. Raises ``FileSDError``.
    """
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".json", ".yml", ".yaml"):
        raise FileSDError(f"{path}: unsupported file extension {extension or '(none)'}; use .json, .yml or .yaml")
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as exc:
        raise FileSDError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise FileSDError(f"{path}: cannot read: not UTF-8 text") from None
    lines: dict[KeyPath, int] = {}
    if extension == ".json":
        try:
            data: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FileSDError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    else:
        try:
            document = load_yaml(text, path)
        except ConfigError as exc:
            raise FileSDError(str(exc.issues[0])) from None
        data, lines = document.data, document.lines
    return _groups(data, path, lines)


def _groups(data: Any, path: str, lines: Mapping[KeyPath, int]) -> list[TargetGroup]:
    def fail(where: KeyPath, message: str) -> FileSDError:
        line = next((lines[where[:end]] for end in range(len(where), -1, -1) if where[:end] in lines), None)
        prefix = path if line is None else f"{path}:{line}"
        dotted = ".".join(str(part) for part in where)
        return FileSDError(f"{prefix}: {dotted}: {message}" if dotted else f"{prefix}: {message}")

    if data is None:
        return []
    if not isinstance(data, list):
        raise fail((), "must be a list of target groups")
    groups: list[TargetGroup] = []
    for index, item in enumerate(data):
        if not isinstance(item, dict):
            raise fail((index,), "a target group must be a mapping with targets and labels")
        for key in item:
            if key not in ("targets", "labels"):
                raise fail((index, key), "unknown key")
        targets = item.get("targets") or []
        if not isinstance(targets, list) or not all(isinstance(target, str) for target in targets):
            raise fail((index, "targets"), "must be a list of strings")
        labels = item.get("labels") or {}
        if not isinstance(labels, dict):
            raise fail((index, "labels"), "must be a mapping of label names to strings")
        for name, value in labels.items():
            if not isinstance(name, str) or not LABEL_NAME.fullmatch(name):
                raise fail((index, "labels", str(name)), f'"{name}" is not a valid label name')
            if not isinstance(value, str):
                raise fail((index, "labels", name), "label values must be strings")
        groups.append(TargetGroup(targets, {**labels, FILE_PATH: path}, f"{path}:{index}"))
    return groups
