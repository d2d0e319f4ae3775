"""Series ring buffers: appends, growth and overwrite at the retention boundary, windows, lookups."""

from __future__ import annotations

import math
import struct

import pytest

from daemon.tsdb import DUPLICATE, OK, OUT_OF_ORDER, STALE_NAN, Labels, Series, Store, is_stale

RETENTION_MS = 300_000


def new_series(store: Store | None = None) -> tuple[Store, Series]:
    store = store or Store(retention=RETENTION_MS / 1000)
    series, created = store.series(Labels.of({"__name__": "up", "job": "api"}))
    assert created
    return store, series


def capacity(series: Series) -> int:
    # The ring's size is internal; tests read it to check growth and overwrite decisions.
    return len(series._ts)


def test_stale_marker_is_a_nan_with_its_own_bit_pattern() -> None:
    assert math.isnan(STALE_NAN)
    assert struct.pack("<d", STALE_NAN) == struct.pack("<Q", 0x7FF0000000000002)
    assert is_stale(STALE_NAN)
    assert not is_stale(float("nan"))
    assert not is_stale(struct.unpack("<d", struct.pack("<Q", 0x7FF8000000000001))[0])
    assert not is_stale(0.0) and not is_stale(math.inf)


def test_append_in_order_then_out_of_order_and_duplicates() -> None:
    store, s = new_series()
    assert store.append(s, 1000, 1.0) == OK
    assert store.append(s, 2000, 2.0) == OK
    assert store.append(s, 1500, 9.0) == OUT_OF_ORDER
    assert store.append(s, 2000, 2.0) == OK  # the same sample again: a no-op
    assert store.append(s, 2000, 3.0) == DUPLICATE
    assert len(s) == 2
    assert s.last() == (2000, 2.0)


def test_duplicate_compares_values_bitwise() -> None:
    store, s = new_series()
    store.append(s, 1000, float("nan"))
    assert store.append(s, 1000, float("nan")) == OK
    assert store.append(s, 1000, STALE_NAN) == DUPLICATE
    store.append(s, 2000, 0.0)
    assert store.append(s, 2000, -0.0) == DUPLICATE
    store.append(s, 3000, STALE_NAN)
    assert store.append(s, 3000, STALE_NAN) == OK
    assert len(s) == 3


def test_empty_series() -> None:
    _, s = new_series()
    assert len(s) == 0
    assert s.last() is None
    assert s.latest_at(1000) is None
    ts, vals = s.window(0, 10**12)
    assert (ts.typecode, vals.typecode) == ("q", "d")
    assert len(ts) == len(vals) == 0


def test_ring_grows_while_oldest_is_inside_retention_then_overwrites() -> None:
    store, s = new_series()
    interval = 15_000
    for i in range(200):
        assert store.append(s, i * interval, float(i)) == OK
    # 300 s of 15 s samples is 20; the ring settles a little above that and then wraps.
    assert 20 <= capacity(s) <= 24
    assert len(s) == capacity(s)
    ts, vals = s.window(-1, 10**12)
    assert list(ts) == [i * interval for i in range(200 - len(s), 200)]
    assert list(vals) == [float(i) for i in range(200 - len(s), 200)]
    newest = 199 * interval
    assert ts[0] <= newest - RETENTION_MS  # nothing inside the retention was lost


def test_full_ring_with_oldest_exactly_at_the_boundary_overwrites() -> None:
    store, s = new_series()
    for t in (0, 100_000, 200_000, 250_000):
        store.append(s, t, 1.0)
    assert capacity(s) == 4
    # oldest (0) is exactly retention older than 300_000: outside (t-retention, t], reused.
    store.append(s, 300_000, 2.0)
    assert capacity(s) == 4
    assert list(s.window(-1, 10**9)[0]) == [100_000, 200_000, 250_000, 300_000]


def test_full_ring_with_oldest_inside_retention_grows() -> None:
    store, s = new_series()
    for t in (0, 100_000, 200_000, 250_000):
        store.append(s, t, 1.0)
    store.append(s, 299_999, 2.0)
    assert capacity(s) > 4
    assert list(s.window(-1, 10**9)[0]) == [0, 100_000, 200_000, 250_000, 299_999]


def test_raising_retention_makes_rings_grow() -> None:
    store, s = new_series()
    for i in range(100):
        store.append(s, i * 15_000, 1.0)
    small = len(s)
    store.retention = 3600
    for i in range(100, 400):
        store.append(s, i * 15_000, 1.0)
    assert len(s) >= 240 > small
    assert list(s.window(-1, 10**12)[0])[-240:] == [i * 15_000 for i in range(160, 400)]


def test_window_is_open_at_mint_and_closed_at_maxt() -> None:
    store, s = new_series()
    for t in (10, 20, 30, 40):
        store.append(s, t, t / 10)
    ts, vals = s.window(10, 30)
    assert list(ts) == [20, 30] and list(vals) == [2.0, 3.0]
    assert list(s.window(9, 10)[0]) == [10]
    assert list(s.window(40, 100)[0]) == []
    assert list(s.window(0, 9)[0]) == []
    assert list(s.window(15, 16)[0]) == []


def test_window_across_the_ring_wrap_includes_stale_markers() -> None:
    store, s = new_series()
    for i in range(50):
        store.append(s, i * 15_000, STALE_NAN if i == 45 else float(i))
    assert s._head != 0  # the samples wrap around the end of the buffer
    ts, vals = s.window(30 * 15_000, 49 * 15_000)
    assert list(ts) == [i * 15_000 for i in range(31, 50)]
    assert is_stale(vals[45 - 31])
    assert [v for v in vals if not is_stale(v)] == [float(i) for i in range(31, 50) if i != 45]


def test_window_returns_copies() -> None:
    store, s = new_series()
    store.append(s, 1, 1.0)
    ts, vals = s.window(0, 1)
    ts[0], vals[0] = 99, 99.0
    assert s.last() == (1, 1.0)


def test_latest_at_lookback_edges() -> None:
    store, s = new_series()
    store.append(s, 100_000, 1.0)
    store.append(s, 200_000, 2.0)
    assert s.latest_at(99_999) is None
    assert s.latest_at(100_000) == 1.0
    assert s.latest_at(199_999) == 1.0
    assert s.latest_at(200_000) == 2.0
    assert s.latest_at(499_999) == 2.0
    assert s.latest_at(500_000) is None  # lookback window is (t - 5m, t]
    assert s.latest_at(210_000, lookback_ms=10_000) is None
    assert s.latest_at(209_999, lookback_ms=10_000) == 2.0


def test_latest_at_in_the_past_across_the_wrap() -> None:
    store, s = new_series()
    for i in range(60):
        store.append(s, i * 15_000, float(i))
    assert s._head != 0
    for i in range(60 - len(s), 60):
        assert s.latest_at(i * 15_000 + 7_000) == float(i)


def test_stale_marker_hides_the_series_and_ordinary_nan_does_not() -> None:
    store, s = new_series()
    store.append(s, 1000, 1.0)
    store.append(s, 2000, STALE_NAN)
    assert s.latest_at(1500) == 1.0
    assert s.latest_at(2000) is None
    assert s.latest_at(100_000) is None
    store.append(s, 3000, float("nan"))
    value = s.latest_at(3000)
    assert value is not None and math.isnan(value)
    last = s.last()
    assert last is not None and last[0] == 3000 and not is_stale(last[1])
