"""Helpers for the fuzz tests (test_fuzz_ws.py, test_fuzz_http.py): example counts,
case tallies, hostile-input strategies shared by both, and waits that cannot hang.

The default run is small and derandomized (the same examples every run: CI never flakes on
a new find). `GAD_FUZZ_EXAMPLES=N` runs N random examples per property instead, keeping
failures in Hypothesis' example database (.hypothesis/) so a rerun replays them first.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from starlette.testclient import WebSocketTestSession

BIG_RUN = int(os.environ.get("GAD_FUZZ_EXAMPLES", "0") or 0)
TIMEOUT_S = 30.0  # any single reply; a hang fails the test instead of stalling the suite


def fuzz_settings(default: int) -> settings:
    """`default` derandomized examples, or $GAD_FUZZ_EXAMPLES random ones."""
    return settings(
        max_examples=BIG_RUN or default,
        derandomize=not BIG_RUN,
        database=settings.default.database if BIG_RUN else None,
        deadline=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class Tally:
    """Cases run per property, and how they ended."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.cases: Counter[str] = Counter()
        self.outcomes: Counter[str] = Counter()
        self.peaks: dict[str, int] = {}  # the largest peak-RSS rise of a case, MiB

    def peak(self, prop: str, mib: int) -> None:
        self.peaks[prop] = max(self.peaks.get(prop, 0), mib)

    def count(self, prop: str, outcome: str) -> None:
        self.cases[prop] += 1
        self.outcomes[outcome] += 1

    def summary(self) -> str:
        mode = f"GAD_FUZZ_EXAMPLES={BIG_RUN}" if BIG_RUN else "default run"
        props = ", ".join(f"{name} {n}" for name, n in sorted(self.cases.items()))
        outcomes = ", ".join(f"{name} {n}" for name, n in sorted(self.outcomes.items()))
        total = sum(self.cases.values())
        line = f"{self.name} ({mode}): {total} cases [{props}]; outcomes [{outcomes}]"
        if self.peaks:
            peaks = ", ".join(f"{name} {mib} MiB" for name, mib in sorted(self.peaks.items()))
            line += f"; largest peak-RSS rise per case [{peaks}]"
        return line


_STATUS = Path("/proc/self/status")


def _status_mib(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+) kB", _STATUS.read_text()).group(1)) // 1024


@contextlib.contextmanager
def peak_memory() -> Iterator[list[int]]:
    """How far the process' peak RSS rose above its RSS at the start of the block, in MiB
    (Linux: VmHWM, reset through /proc/self/clear_refs); [] elsewhere."""
    growth: list[int] = []
    try:
        Path("/proc/self/clear_refs").write_text("5")
        start = _status_mib("VmRSS")
    except (OSError, AttributeError):
        yield growth
        return
    yield growth
    growth.append(_status_mib("VmHWM") - start)


def receive(ws: WebSocketTestSession, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """The next ASGI message the server sent on `ws` (websocket.send or websocket.close);
    TestClient's own receive waits forever."""

    async def get() -> dict[str, Any]:
        with anyio.fail_after(timeout):
            return await ws._send_rx.receive()  # the queue TestClient.receive() reads

    return ws.portal.call(get)


# --- JSON text, including what json.dumps cannot write ---------------------------------

# Numbers as literal JSON text: Python's json accepts NaN/Infinity, parses 1e400 as inf and
# refuses integers of more than 4300 digits with a plain ValueError.
NUMBER_TEXT = st.one_of(
    st.integers().map(str),
    st.floats().map(json.dumps),
    st.sampled_from(
        [
            "0",
            "-0",
            "-1",
            "1e400",
            "-1e400",
            "1e-400",
            "1.7976931348623157e308",
            "-1.7976931348623157e308",
            "9" * 4300,  # the longest integer Python's json parses
            "1" + "0" * 5000,  # over the digit limit: a ValueError, not a JSONDecodeError
            str(2**63),
            str(2**64 + 1),
        ]
    ),
)
SCALAR_TEXT = st.one_of(
    NUMBER_TEXT,
    st.text(max_size=20).map(json.dumps),
    st.sampled_from(["null", "true", "false", '"\\ud800"', '""']),
)
JSON_TEXT = st.recursive(
    SCALAR_TEXT,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.dictionaries(st.text(max_size=6), inner, max_size=4).map(
            lambda d: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=8,
)


@st.composite
def deep_json(draw: st.DrawFn) -> str:
    """Deeply nested JSON (up to 100k levels), balanced or not, bare or inside a message."""
    depth = draw(st.one_of(st.integers(1, 2000), st.integers(2000, 100_000)))
    opener, closer, leaf = draw(st.sampled_from([("[", "]", "1"), ('{"a":', "}", "1")]))
    body = opener * depth + leaf + closer * draw(st.sampled_from([depth, 0, depth // 2]))
    if draw(st.booleans()):
        key = draw(st.sampled_from(["type", "seq", "ts", "data", "image", "fps", "features"]))
        return '{"type":"features",' + json.dumps(key) + ":" + body + "}"
    return body


# --- encoded images: real ones broken in every way, and bombs --------------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width: int, height: int, idat: bytes | None = None, *, color_type: int = 0) -> bytes:
    """A PNG whose header claims width × height (8-bit; gray by default), with IDAT `idat`
    (None: no IDAT at all)."""
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    chunks = png_chunk(b"IHDR", header)
    if idat is not None:
        chunks += png_chunk(b"IDAT", idat)
    return b"\x89PNG\r\n\x1a\n" + chunks + png_chunk(b"IEND", b"")


def zero_png(width: int, height: int) -> bytes:
    """A real, complete gray PNG of zeros: tiny on disk whatever width × height is."""
    rows = zlib.compressobj(9)
    out, line = [], b"\0" * (width + 1)  # filter byte + one gray row
    for _ in range(height):
        out.append(rows.compress(line))
    out.append(rows.flush())
    return png(width, height, b"".join(out))


def jpeg_claiming(width: int, height: int) -> bytes:
    """A JPEG header (SOI, SOF0) claiming width × height, with no usable scan."""
    sof = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8" + b"\xff\xc0" + struct.pack(">H", len(sof) + 2) + sof + b"\xff\xd9"


@st.composite
def broken(draw: st.DrawFn, good: bytes) -> bytes:
    """`good` (a real encoded frame) truncated, bit-flipped, spliced or padded."""
    how = draw(st.sampled_from(["truncate", "flip", "splice", "pad", "header-only"]))
    data = bytearray(good)
    if how == "truncate":
        return bytes(data[: draw(st.integers(0, len(data) - 1))])
    if how == "flip":
        for _ in range(draw(st.integers(1, 16))):
            # Headers matter most: flip within the first 600 bytes half of the time.
            at = draw(st.integers(0, min(len(data), 600) - 1) | st.integers(0, len(data) - 1))
            data[at] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if how == "splice":
        at = draw(st.integers(0, len(data)))
        return bytes(data[:at]) + draw(st.binary(min_size=1, max_size=64)) + bytes(data[at:])
    if how == "pad":
        return bytes(data) + draw(st.binary(min_size=1, max_size=256))
    return bytes(data[: draw(st.integers(2, 200))])


def bmp_claiming(width: int, height: int) -> bytes:
    """A 24-bit BMP header claiming width × height, with a few bytes of pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    pixels = b"\0" * 16
    size = 14 + len(info) + len(pixels)
    return b"BM" + struct.pack("<IHHI", size, 0, 0, 14 + len(info)) + info + pixels


def bomb_strategy() -> st.SearchStrategy[bytes]:
    """Headers claiming absurd canvases, and real small-file huge-canvas PNGs."""
    dims = st.integers(0, 2**31 - 1)
    return st.one_of(
        st.builds(png, dims, dims),  # header only
        st.builds(png, dims, dims, st.binary(max_size=64)),
        st.builds(jpeg_claiming, st.integers(0, 65535), st.integers(0, 65535)),
        st.builds(bmp_claiming, st.integers(-(2**31), 2**31 - 1), st.integers(-(2**31), 2**31 - 1)),
        st.integers(0, 1).map(lambda i: _real_bombs()[i]),  # built on first use
        # Tiny pixel counts, absurd aspect ratios: 1 × 16000 and such.
        st.builds(zero_png, st.integers(1, 3), st.integers(2000, 16000)),
        st.builds(zero_png, st.integers(2000, 16000), st.integers(1, 3)),
    )


_BOMBS: list[bytes] = []


def _real_bombs() -> list[bytes]:
    """Complete PNGs of 6000 × 6000 (36 Mpx, over the 16.7 Mpx default) and of 12000 × 12000
    (over Pillow's own bomb limit): about 40 and 150 KB on disk."""
    if not _BOMBS:
        _BOMBS.extend([zero_png(6000, 6000), zero_png(12000, 12000)])
    return _BOMBS


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def float_row(values: np.ndarray, dtype: str = "<f4") -> str:
    """base64 of `values` as `dtype` (casts that overflow or meet NaN are meant)."""
    with np.errstate(all="ignore"):
        return b64(np.asarray(values, dtype).tobytes())
