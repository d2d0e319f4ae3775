"""The PromQL functions the parser accepts, with their argument and return types.

Types follow Prometheus 3 (``promql/parser/functions.go``). ``variadic`` is 0 for a fixed
argument list, ``n > 0`` when the last argument type may repeat up to ``n`` more times (or be
left out), and ``-1`` when it may repeat without limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.promql.ast import ValueType


@dataclass(frozen=True, slots=True)
class Signature:
    """The argument types, variadic count and return type of one function."""

    arg_types: tuple[ValueType, ...]
    variadic: int
    return_type: ValueType
    # Prometheus hides these behind --enable-feature=promql-experimental-functions; alertd
    # parses them (its conformance data uses them) and lets the evaluator decide.
    experimental: bool = False


_S, _V, _M, _STR = ValueType.SCALAR, ValueType.VECTOR, ValueType.MATRIX, ValueType.STRING


def _vector_to_vector(*names: str) -> dict[str, Signature]:
    return {name: Signature((_V,), 0, _V) for name in names}


def _matrix_to_vector(*names: str, experimental: bool = False) -> dict[str, Signature]:
    return {name: Signature((_M,), 0, _V, experimental) for name in names}


def _date_functions(*names: str) -> dict[str, Signature]:
    # The vector argument is optional: without it the evaluation time is used.
    return {name: Signature((_V,), 1, _V) for name in names}


FUNCTIONS: dict[str, Signature] = {
    **_vector_to_vector(
        "abs", "absent", "acos", "acosh", "asin", "asinh", "atan", "atanh", "ceil", "cos",
        "cosh", "deg", "exp", "floor", "histogram_avg", "histogram_count", "histogram_stddev",
        "histogram_stdvar", "histogram_sum", "ln", "log10", "log2", "rad", "sgn", "sin", "sinh",
        "sort", "sort_desc", "sqrt", "tan", "tanh", "timestamp",
    ),
    **_matrix_to_vector(
        "absent_over_time", "avg_over_time", "changes", "count_over_time", "delta", "deriv",
        "idelta", "increase", "irate", "last_over_time", "max_over_time", "min_over_time",
        "present_over_time", "rate", "resets", "stddev_over_time", "stdvar_over_time",
        "sum_over_time",
    ),
    **_matrix_to_vector(
        "first_over_time", "mad_over_time", "ts_of_first_over_time", "ts_of_last_over_time",
        "ts_of_max_over_time", "ts_of_min_over_time", experimental=True,
    ),
    **_date_functions(
        "day_of_month", "day_of_week", "day_of_year", "days_in_month", "hour", "minute",
        "month", "year",
    ),
    "clamp": Signature((_V, _S, _S), 0, _V),
    "clamp_max": Signature((_V, _S), 0, _V),
    "clamp_min": Signature((_V, _S), 0, _V),
    "double_exponential_smoothing": Signature((_M, _S, _S), 0, _V, True),
    "end": Signature((), 0, _S, True),
    "histogram_fraction": Signature((_S, _S, _V), 0, _V),
    "histogram_quantile": Signature((_S, _V), 0, _V),
    "histogram_quantiles": Signature((_V, _STR, _S, _S), 9, _V, True),
    "info": Signature((_V, _V), 1, _V, True),
    "integral": Signature((_M, _S), 1, _V, True),
    "label_join": Signature((_V, _STR, _STR, _STR), -1, _V),
    "label_replace": Signature((_V, _STR, _STR, _STR, _STR), 0, _V),
    "max_of": Signature((_S, _S), 0, _S, True),
    "min_of": Signature((_S, _S), 0, _S, True),
    "pi": Signature((), 0, _S),
    "predict_linear": Signature((_M, _S), 0, _V),
    "quantile_over_time": Signature((_S, _M), 0, _V),
    "range": Signature((), 0, _S, True),
    "round": Signature((_V, _S), 1, _V),
    "scalar": Signature((_V,), 0, _S),
    "sort_by_label": Signature((_V, _STR), -1, _V, True),
    "sort_by_label_desc": Signature((_V, _STR), -1, _V, True),
    "start": Signature((), 0, _S, True),
    "step": Signature((), 0, _S, True),
    "time": Signature((), 0, _S),
    "vector": Signature((_S,), 0, _V),
}  # fmt: skip
