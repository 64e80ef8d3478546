"""Per-caller token bucket. In-process: each API process keeps its own buckets."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`per_minute` requests per caller on average, bursts of up to `burst`."""

    # Buckets of callers idle this long are full again anyway; dropping them bounds memory.
    _IDLE_S = 600.0

    def __init__(
        self, per_minute: int, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._last_sweep = clock()

    def take(self, caller: str) -> float:
        """Spend one token; 0.0 if allowed, else the seconds until a token is available."""
        now = self._clock()
        self._sweep(now)
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = self._buckets[caller] = _Bucket(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self._rate

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < self._IDLE_S:
            return
        self._last_sweep = now
        for key in [k for k, b in self._buckets.items() if now - b.updated > self._IDLE_S]:
            del self._buckets[key]
