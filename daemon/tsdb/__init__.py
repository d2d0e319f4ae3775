"""The in-memory series store: interned label sets, per-series ring buffers, a postings index."""

from daemon.tsdb.labels import Labels
from daemon.tsdb.matcher import Matcher, SelectorError
from daemon.tsdb.selector import parse_selector
from daemon.tsdb.series import DUPLICATE, OK, OUT_OF_ORDER, Series
from daemon.tsdb.staleness import STALE_NAN, is_stale
from daemon.tsdb.store import Store

__all__ = [
    "DUPLICATE",
    "OK",
    "OUT_OF_ORDER",
    "STALE_NAN",
    "Labels",
    "Matcher",
    "SelectorError",
    "Series",
    "Store",
    "is_stale",
    "parse_selector",
]
