"""Staleness markers: the one NaN that means "this series ended", as opposed to a NaN sample."""

from __future__ import annotations

import struct

# Prometheus writes this exact bit pattern when a series disappears from its target. Ordinary
# NaN samples (0x7ff8000000000001 from exporters, or the result of 0/0) must stay ordinary.
STALE_NAN_BITS = 0x7FF0000000000002
STALE_NAN: float = struct.unpack("<d", struct.pack("<Q", STALE_NAN_BITS))[0]

_pack_double = struct.Struct("<d").pack
_STALE_BYTES = struct.pack("<Q", STALE_NAN_BITS)


def is_stale(value: float) -> bool:
    """True only for the staleness marker, never for any other NaN or number."""
    # value != value is the cheap NaN test; only NaNs pay for the bit comparison.
    return value != value and _pack_double(value) == _STALE_BYTES
