"""Which LLM cache keys a store may hold, known in memory, so that a call whose key was never
stored does not wait for a DuckDB query to say so.

A run's store reads every cached key once when the run starts (`Store.track_cache_keys`) and adds
each key it commits afterwards. A clear bit means the key was never stored (no false negatives); a
set bit means it may have been, and the lookup asks DuckDB. One bit per hashed key, 8 MiB: about
1.5 % of new keys are looked up anyway at a million cached calls, 14 % at ten million.
"""

from __future__ import annotations

from collections.abc import Iterable

_BITS = 1 << 26


class CacheKeys:
    def __init__(self) -> None:
        self._bits = bytearray(_BITS // 8)

    def add(self, keys: Iterable[str]) -> None:
        bits = self._bits
        for key in keys:
            at = hash(key) & (_BITS - 1)  # str hashes are stable within a process, which is all it needs
            bits[at >> 3] |= 1 << (at & 7)

    def may_hold(self, key: str) -> bool:
        at = hash(key) & (_BITS - 1)
        return bool(self._bits[at >> 3] & (1 << (at & 7)))
