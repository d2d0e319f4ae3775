"""Series names and labels for CloudWatch samples, spelled as the official cloudwatch_exporter spells them.

``AWS/ECS`` ``CPUUtilization`` ``Average`` with dimensions ``ClusterName``, ``ServiceName`` becomes
``aws_ecs_cpuutilization_average{job="aws_ecs",cluster_name="...",service_name="..."}``:
the name is the lower-cased namespace, the snake-cased metric name and the snake-cased
statistic (``_sample_count``, ``_p99``, ``_p99_9``), with every character outside
``[a-zA-Z0-9:_]`` turned into ``_`` and runs of ``_`` merged; dimensions become snake-cased
labels; ``job`` is the sanitised namespace. The exporter's empty ``instance`` label is an absent
label here, as it is in Prometheus.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from daemon.tsdb import Labels

_CAMEL_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])")
_INVALID = re.compile(r"[^a-zA-Z0-9:_]")
_UNDERSCORES = re.compile(r"__+")
# Labels the series already carries; a dimension of the same name is kept as exported_<name>,
# the way Prometheus keeps a target's clashing labels.
_RESERVED = frozenset({"__name__", "job", "instance"})


def snake_case(text: str) -> str:
    """``CPUUtilization`` -> ``cpuutilization``, ``HTTPCode_Target_5XX_Count`` -> ``httpcode_target_5_xx_count``.

    Only a lower-case letter or digit followed by a capital starts a new word, exactly as the
    exporter does, so runs of capitals stay together.
    """
    return _CAMEL_BOUNDARY.sub(r"\1_\2", text).lower()


def safe_name(text: str) -> str:
    """``text`` with characters invalid in a metric name made ``_``, and runs of ``_`` merged."""
    return _UNDERSCORES.sub("_", _INVALID.sub("_", text))


def metric_name(namespace: str, metric: str, statistic: str) -> str:
    """The series name of one statistic of a CloudWatch metric."""
    return safe_name(f"{namespace.lower()}_{snake_case(metric)}") + "_" + safe_name(snake_case(statistic))


def job_name(namespace: str) -> str:
    """The ``job`` label the exporter gives every series of ``namespace``: ``AWS/ECS`` -> ``aws_ecs``."""
    return safe_name(namespace.lower())


def label_name(dimension: str) -> str:
    """The label a dimension becomes: ``LoadBalancer`` -> ``load_balancer``."""
    name = safe_name(snake_case(dimension))
    if name[:1].isdigit():
        name = "_" + name
    return "exported_" + name if name in _RESERVED else name


def series_labels(namespace: str, metric: str, statistic: str, dimensions: Iterable[tuple[str, str]]) -> Labels:
    """The full label set of one statistic of one CloudWatch metric."""
    pairs = [(label_name(name), value) for name, value in dimensions]
    pairs.append(("__name__", metric_name(namespace, metric, statistic)))
    pairs.append(("job", job_name(namespace)))
    return Labels.of(pairs)
