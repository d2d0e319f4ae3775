"""Silences: states, Alertmanager's update-or-replace rules, expiry, validation, persistence across
a reopened SQLite store, retention, and the silencer's marks."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from daemon.clock import FakeClock
from daemon.dispatch.alerts import Marker
from daemon.dispatch.alert import fingerprint
from daemon.dispatch.silence import (
    ACTIVE,
    EXPIRED,
    PENDING,
    Silence,
    SilenceError,
    SilenceMatcher,
    SilenceNotFound,
    Silencer,
    Silences,
    sort_for_listing,
)
from daemon.store import MemoryStateStore, SQLiteStateStore
from daemon.tsdb.labels import Labels

T0 = 1_700_000_000.0


def make(store: object = None, clock: FakeClock | None = None) -> tuple[Silences, FakeClock]:
    clock = clock or FakeClock(T0)
    counter = itertools.count(1)
    silences = Silences(store or MemoryStateStore(), clock, new_id=lambda: f"s{next(counter)}")  # type: ignore[arg-type]
    return silences, clock


def silence(start: float, end: float, *matchers: SilenceMatcher, **kw: str) -> Silence:
    return Silence(matchers=matchers or (SilenceMatcher("alertname", "Down"),), starts_at=start, ends_at=end, created_by="ops", comment="maintenance", **kw)


def test_states_follow_the_clock() -> None:
    s = silence(T0 + 10, T0 + 20)
    assert [s.state(t) for t in (T0, T0 + 10, T0 + 20, T0 + 21)] == [PENDING, ACTIVE, ACTIVE, EXPIRED]


def test_matchers_match_as_alertmanager() -> None:
    labels = Labels.of({"alertname": "Down", "env": "prod"})
    assert SilenceMatcher("env", "prod").matches(labels.get("env"))
    assert SilenceMatcher("env", "pr.*", is_regex=True).matches("prod")
    assert not SilenceMatcher("env", "pr", is_regex=True).matches("prod")  # anchored
    assert SilenceMatcher("env", "dev|test", is_regex=True, is_equal=False).matches("prod")
    assert SilenceMatcher("team", "", is_equal=True).matches("")  # a missing label is empty
    assert [str(SilenceMatcher("a", "b", r, e)) for r, e in ((False, True), (False, False), (True, True), (True, False))] == [
        'a="b"', 'a!="b"', 'a=~"b"', 'a!~"b"'
    ]
    with pytest.raises(SilenceError, match="invalid regular expression"):
        SilenceMatcher("a", "(", is_regex=True)


def test_new_silence_gets_an_id_and_a_start_no_earlier_than_now() -> None:
    silences, clock = make()
    sid = silences.set(silence(T0 - 100, T0 + 3600))
    created = silences.get(sid)
    assert sid == "s1" and created is not None
    assert created.starts_at == T0 and created.updated_at == T0 and created.state(T0) == ACTIVE


def test_update_in_place_or_replace() -> None:
    silences, clock = make()
    sid = silences.set(silence(T0, T0 + 3600))
    # Same matchers, same start, later end: updated in place.
    assert silences.set(silence(T0, T0 + 7200, id=sid)) == sid
    assert silences.get(sid).ends_at == T0 + 7200  # type: ignore[union-attr]
    # Other matchers: the old one expires now, a new one takes its place.
    new = silences.set(silence(T0, T0 + 7200, SilenceMatcher("alertname", "Other"), id=sid))
    assert new != sid
    assert silences.get(sid).state(T0 + 1) == EXPIRED  # type: ignore[union-attr]
    # An expired silence is never changed in place.
    clock._now += 10
    again = silences.set(silence(T0, T0 + 7200, SilenceMatcher("alertname", "Other"), id=sid))
    assert again not in (sid, new)
    with pytest.raises(SilenceNotFound):
        silences.set(silence(T0, T0 + 60, id="nope"))


def test_expire() -> None:
    silences, clock = make()
    active = silences.set(silence(T0, T0 + 3600))
    pending = silences.set(silence(T0 + 600, T0 + 3600))
    silences.expire(active)
    silences.expire(pending)
    assert silences.get(active).ends_at == T0  # type: ignore[union-attr]
    assert (silences.get(pending).starts_at, silences.get(pending).ends_at) == (T0, T0)  # type: ignore[union-attr]
    clock._now += 1
    assert {s.state(clock.time()) for s in silences.query()} == {EXPIRED}
    with pytest.raises(SilenceError, match="already expired"):
        silences.expire(active)
    with pytest.raises(SilenceNotFound):
        silences.expire("missing")


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Silence(matchers=(), starts_at=T0, ends_at=T0 + 60), "at least one matcher required"),
        (silence(T0 + 60, T0 + 30), "end time must not be before start time"),
        (silence(T0, T0 + 60, SilenceMatcher("0bad", "x")), 'invalid label matcher 0: invalid label name "0bad"'),
    ],
)
def test_invalid_silences_are_refused(bad: Silence, message: str) -> None:
    silences, _ = make()
    with pytest.raises(SilenceError, match=message):
        silences.set(bad)
    assert len(silences) == 0


def test_silences_survive_a_reopened_store(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    store = SQLiteStateStore(tmp_path / "state.db")
    silences, _ = make(store, clock)
    kept = silences.set(silence(T0, T0 + 3600, SilenceMatcher("env", "prod|staging", is_regex=True)))
    gone = silences.set(silence(T0, T0 + 3600))
    silences.expire(gone)
    store.close()

    clock._now += 1
    reopened = SQLiteStateStore(tmp_path / "state.db")
    again, _ = make(reopened, clock)
    assert {s.id for s in again.query(states=[ACTIVE])} == {kept}
    assert again.get(kept) == silences.get(kept)
    assert again.get(gone).ends_at == T0  # type: ignore[union-attr]
    reopened.close()


def test_expired_silences_are_kept_for_the_retention_then_deleted() -> None:
    store = MemoryStateStore()
    silences, clock = make(store)
    sid = silences.set(silence(T0, T0 + 60))
    clock._now = T0 + 60 + silences.retention
    assert silences.gc() == 0
    clock._now += 1
    assert silences.gc() == 1
    assert silences.get(sid) is None and store.load("silence") == {}


def test_silencer_mutes_with_active_silences_and_marks_the_alert() -> None:
    silences, clock = make()
    marker = Marker()
    silencer = Silencer(silences, marker)
    labels = Labels.of({"alertname": "Down", "env": "prod"})
    fp = fingerprint(labels)
    assert not silencer.mutes(labels)
    assert marker.status(fp).state == "active"
    later = silences.set(silence(T0 + 600, T0 + 3600))
    assert not silencer.mutes(labels)
    clock._now += 600
    assert silencer.mutes(labels)
    status = marker.status(fp)
    assert status.state == "suppressed" and status.silenced_by == (later,)
    assert not silencer.mutes(Labels.of({"alertname": "Up"}))


def test_listing_order() -> None:
    silences, clock = make()
    a = silences.set(silence(T0, T0 + 600))
    b = silences.set(silence(T0, T0 + 300))
    c = silences.set(silence(T0 + 100, T0 + 300))
    d = silences.set(silence(T0, T0 + 50))
    e = silences.set(silence(T0, T0 + 20))
    clock._now += 60
    assert [s.id for s in sort_for_listing(silences.query(), clock.time())] == [b, a, c, d, e]
