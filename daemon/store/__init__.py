"""Durable state (alert state, and later notification log, silences, acknowledgements) behind one interface."""

from daemon.store.base import MemoryStateStore, StateStore
from daemon.store.sqlite import SQLiteStateStore, open_state_store

__all__ = ["MemoryStateStore", "SQLiteStateStore", "StateStore", "open_state_store"]
