"""The error a PromQL evaluation ends with."""

from __future__ import annotations


class QueryError(Exception):
    """Evaluation failed; the message is the one Prometheus gives for the same failure.

    Examples: ``vector cannot contain metrics with the same labelset``, ``found duplicate
    series for the match group ... many-to-many matching not allowed: matching labels must be
    unique on one side``, ``exceeded maximum resolution of 11,000 points per timeseries. Try
    decreasing the query resolution (?step=XX)``.
    """
