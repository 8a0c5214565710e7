"""When to try again: capped exponential backoff with jitter, one object per connection.

    delay = uniform(d / 2, d),  d = min(max_s, initial_s × factor ** failures)

("equal jitter": never less than half the step, so a dead peer is not hammered, and
spread so that cameras that dropped together do not come back in lockstep). The count
of failures starts over once a connection has stayed up `stable_s` seconds; a link that
opens and fails at once keeps backing off. `refused()` (the peer said no: a bad key, a
policy) waits the whole cap. Clock and random are injected, so the tests never sleep.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    stable_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    uniform: Callable[[float, float], float] = random.uniform
    failures: int = 0  # consecutive failures since the last stable connection
    _up_since: float | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not (0 < self.initial_s <= self.max_s) or self.factor < 1 or self.stable_s < 0:
            raise ValueError(
                "backoff needs 0 < initial_s <= max_s, factor >= 1 and stable_s >= 0; got "
                f"{self.initial_s}, {self.max_s}, {self.factor}, {self.stable_s}"
            )

    def connected(self) -> None:
        """The connection is up (opened, joined)."""
        self._up_since = self.clock()

    def failed(self) -> float:
        """It failed (or went down): seconds to wait before the next try."""
        if self._up_since is not None and self.clock() - self._up_since >= self.stable_s:
            self.failures = 0
        self._up_since = None
        step = min(self.max_s, self.initial_s * self.factor**self.failures)
        self.failures += 1
        return self.uniform(step / 2, step)

    def refused(self) -> float:
        """The peer refused us on purpose: wait the cap (then try again: it may be fixed)."""
        self._up_since = None
        self.failures += 1
        return self.uniform(self.max_s / 2, self.max_s)
