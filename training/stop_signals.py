"""SIGINT and SIGTERM stop a training run as Ctrl-C does: the loop saves where it stands
(training/train.py) and the command exits 130, so `--resume` goes on from there.

Without this a run started in the background (`cmd &` in a script, `nohup`) ignores
SIGINT — the shell starts background jobs with it ignored and Python keeps that — and
SIGTERM (`kill`, `docker stop`, Kubernetes) ends it at once, losing every step since the
last save. A handler set by the caller (`gad teach train` cancels on SIGTERM) is kept, and
so is any signal in a multi-process launch (WORLD_SIZE > 1), where torchrun owns them: a
rank saving alone would wait at the save's barrier for ranks that are gone.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def stop_signals_interrupt() -> Iterator[None]:
    """While inside: SIGINT and SIGTERM raise KeyboardInterrupt in the main thread (where
    their handling is not already the caller's); the previous handling after."""
    single = int(os.environ.get("WORLD_SIZE", "1")) <= 1
    if not single or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for sig in STOP_SIGNALS:
        current = signal.getsignal(sig)
        if current in (signal.SIG_IGN, signal.SIG_DFL):  # not a handler of the caller's
            previous[sig] = current
            signal.signal(sig, _interrupt)
    try:
        yield
    finally:
        for sig, handling in previous.items():
            signal.signal(sig, handling)
