"""A streaming package's step.onnx in onnxruntime: one step per frame per stream. No torch.

    engine = StepEngine.load(package, providers=("cpu",), threads=2)
    streams = [engine.new_state() for _ in range(3)]        # one KVRings per stream
    logits = engine.step(features, streams)                  # features [3, D] → [3, C]

Each KVRings holds its stream's K/V rings ([L, 2, kvH, W-1, d], oldest first) and their
validity; `step` stacks the given streams' rings into one batch, runs the graph once, and
pushes each stream's new row (the oldest falls out). Streams of any age batch together: a
stream still filling its window masks its empty slots. The rings live with the process that
serves the stream; `replay` rebuilds them from a stream's last feature rows (exact when it
is given `reach` rows, or the stream's whole history if shorter). A package with
prefill.onnx runs those rows — and `/classify`'s clips — as banded passes of its fixed
chunk of frames instead of one step per row (equal to the step loop): a stream that starts
empty is padded at the front to whole chunks (padding is never read); a stream continued
from its rings takes whole chunks, then single steps.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runtime.calibration import softmax
from runtime.engine import EngineInputError
from runtime.errors import GADError
from runtime.manifest import ModelPackage, read_package
from runtime.sessions import DEFAULT_PROVIDERS, open_session

log = logging.getLogger(__name__)


@dataclass
class KVRings:
    """One stream's rings: K/V of its last W-1 frames per layer, and which slots hold one."""

    ring: np.ndarray  # [L, 2, kvH, W-1, d] float32, oldest first
    mask: np.ndarray  # [W-1] int64
    frames: int = 0  # frames stepped so far

    def push(self, row: np.ndarray) -> None:
        """Append the newest frame's K/V `row` [L, 2, kvH, d]; the oldest falls out."""
        self.frames += 1
        if self.ring.shape[3] == 0:
            return
        self.ring[:, :, :, :-1] = self.ring[:, :, :, 1:]
        self.ring[:, :, :, -1] = row
        self.mask[:-1] = self.mask[1:]
        self.mask[-1] = 1

    @property
    def nbytes(self) -> int:
        return int(self.ring.nbytes + self.mask.nbytes)


@dataclass
class StepEngine:
    """step.onnx: a batch of streams' new frames (+ their rings) → class logits."""

    ring_shape: tuple[int, ...]  # one stream's ring: [L, 2, kvH, W-1, d]
    feature_dim: int
    classes: tuple[str, ...]
    providers: tuple[str, ...]
    skipped: dict[str, str] = field(default_factory=dict)
    package: ModelPackage | None = None
    prefill_chunk: int = 0  # frames per prefill.onnx call (its fixed shape); 0: none
    _session: Any = field(default=None, repr=False)
    _prefill: Any = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        path: Path,
        *,
        ring_shape: Sequence[int],
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        threads: int | None = None,
        classes: Sequence[str] | None = None,
        package: ModelPackage | None = None,
    ) -> StepEngine:
        session: Any
        session, active, skipped = open_session(Path(path), providers, threads)
        inputs = {i.name: i.shape for i in session.get_inputs()}
        outputs = {o.name: o.shape for o in session.get_outputs()}
        if set(inputs) != {"features", "ring", "ring_mask"} or "logits" not in outputs:
            raise GADError(f"{path} is not a step graph (inputs {sorted(inputs)})")
        shape = tuple(int(n) for n in ring_shape)
        if len(shape) != 5:
            raise GADError(f"a ring is [layers, 2, kv heads, W-1, head dim], got {list(shape)}")
        n_classes = outputs["logits"][-1]
        return cls(
            ring_shape=shape,
            feature_dim=int(inputs["features"][-1]),
            classes=tuple(classes) if classes else tuple(str(i) for i in range(n_classes)),
            providers=active,
            skipped=skipped,
            package=package,
            _session=session,
        )

    @classmethod
    def load(
        cls,
        package: Path | ModelPackage,
        *,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        threads: int | None = None,
        check_hashes: bool = True,
    ) -> StepEngine:
        if not isinstance(package, ModelPackage):
            package = read_package(Path(package), check_hashes=check_hashes)
        step = package.step
        if step is None:
            raise GADError(f"model {package.name} v{package.version} is not a streaming package")
        engine = cls.open(
            package.folder / step.file,
            ring_shape=package.ring_shape,
            providers=providers,
            threads=threads,
            classes=package.classes,
            package=package,
        )
        if step.prefill is not None:
            engine.open_prefill(package.folder / step.prefill.file, threads=threads)
        log.debug(
            "step engine %s v%s on %s%s",
            package.name,
            package.version,
            engine.providers,
            " (with prefill)" if engine._prefill is not None else "",
        )
        return engine

    def open_prefill(self, path: Path, *, threads: int | None = None) -> None:
        """Run replays and clips through prefill.onnx (a chunk of frames in one pass)."""
        session: Any
        session, _, _ = open_session(Path(path), self.providers, threads)
        inputs = {i.name: i.shape for i in session.get_inputs()}
        outputs = {o.name for o in session.get_outputs()}
        expected = {"features", "frame_mask", "ring", "ring_mask"}
        if set(inputs) != expected or "ring_out" not in outputs:
            raise GADError(f"{path} is not a prefill graph (inputs {sorted(inputs)})")
        frames = inputs["features"][1]
        if not isinstance(frames, int) or frames < 1:
            raise GADError(f"{path}: a prefill graph has a fixed chunk of frames, got {frames}")
        self._prefill, self.prefill_chunk = session, frames

    @property
    def window(self) -> int:
        return self.ring_shape[3] + 1

    @property
    def reach(self) -> int:
        """Feature rows a label depends on: replaying that many rebuilds the rings exactly."""
        return self.ring_shape[0] * self.ring_shape[3] + 1

    def new_state(self) -> KVRings:
        """Empty rings for a stream that starts now."""
        return KVRings(
            np.zeros(self.ring_shape, np.float32), np.zeros(self.ring_shape[3], np.int64)
        )

    def step(self, features: np.ndarray, streams: Sequence[KVRings]) -> np.ndarray:
        """Logits [B, C] for one new frame of each of `streams` (features [B, D]); each
        stream's rings advance by the frame."""
        features = np.asarray(features)
        if features.ndim != 2 or features.shape != (len(streams), self.feature_dim):
            raise EngineInputError(
                f"step features must be [{len(streams)}, {self.feature_dim}] (one row per "
                f"stream), got {list(features.shape)}"
            )
        if features.dtype.kind not in "fiu" or not np.isfinite(features).all():
            raise EngineInputError("step features must be finite numbers")
        if not streams:
            return np.zeros((0, len(self.classes)), np.float32)
        feeds = {
            "features": np.ascontiguousarray(features, dtype=np.float32),
            "ring": np.stack([s.ring for s in streams]),
            "ring_mask": np.stack([s.mask for s in streams]),
        }
        logits, rows = self._run_graph(feeds)
        for stream, row in zip(streams, rows, strict=True):
            stream.push(row)
        result: np.ndarray = logits
        return result

    def _run_graph(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """step.onnx on the stacked inputs → (logits [B, C], new rows [B, L, 2, kvH, d]);
        model/torch_engine.py's TorchStepEngine runs the same step in PyTorch instead."""
        logits, rows = self._session.run(["logits", "rows"], feeds)
        return logits, rows

    @property
    def temperature(self) -> float:
        """The package's calibrated temperature (1 without a package or calibration)."""
        return 1.0 if self.package is None else self.package.temperature

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """Class probabilities of `step`'s or `run`'s logits [..., C]: softmax at the
        package's temperature, as the window head's (runtime.calibration.softmax)."""
        return softmax(logits, self.temperature)

    def classify(self, features: np.ndarray, streams: Sequence[KVRings]) -> np.ndarray:
        """Class probabilities [B, C] of `step`."""
        return self.probabilities(self.step(features, streams))

    def replay(self, rows: np.ndarray) -> tuple[KVRings, np.ndarray]:
        """A stream's state after its feature `rows` [N, D] (oldest first) and each row's
        logits [N, C]; exact when `rows` is the whole stream or its last `reach` rows."""
        state = self.new_state()
        return state, self.run(rows, state)

    def run(self, rows: np.ndarray, state: KVRings) -> np.ndarray:
        """Step one stream through its next feature `rows` [N, D]: logits [N, C]; the state
        advances. Through prefill.onnx in chunks when the package has it, else step by step."""
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != self.feature_dim:
            raise EngineInputError(
                f"rows must be [frames, {self.feature_dim}], got {list(rows.shape)}"
            )
        if not np.isfinite(rows).all():
            raise EngineInputError("step features must be finite numbers")
        out = [np.zeros((0, len(self.classes)), np.float32)]
        if self._prefill is not None and len(rows):
            real = np.ones(len(rows), np.int64)
            if not state.mask.any():  # an empty stream: pad its front to whole chunks
                pad = -len(rows) % self.prefill_chunk
                rows = np.concatenate([np.zeros((pad, rows.shape[1]), rows.dtype), rows])
                real = np.concatenate([np.zeros(pad, np.int64), real])
                return self._prefill_chunks(rows, real, state)[pad:]
            whole = len(rows) - len(rows) % self.prefill_chunk
            out.append(self._prefill_chunks(rows[:whole], real[:whole], state))
            rows = rows[whole:]
        return np.concatenate(out + [self.step(row[None], [state]) for row in rows])

    def _prefill_chunks(self, rows: np.ndarray, real: np.ndarray, state: KVRings) -> np.ndarray:
        """Whole chunks of `rows` (len a multiple of the chunk) through prefill.onnx."""
        out = []
        for at in range(0, len(rows), self.prefill_chunk):
            part = slice(at, at + self.prefill_chunk)
            feeds = {
                "features": np.ascontiguousarray(rows[None, part], dtype=np.float32),
                "frame_mask": real[None, part],
                "ring": state.ring[None],
                "ring_mask": state.mask[None],
            }
            logits, ring, mask = self._prefill.run(["logits", "ring_out", "ring_mask_out"], feeds)
            state.ring, state.mask = ring[0], mask[0]
            state.frames += int(real[part].sum())
            out.append(logits[0])
        return np.concatenate(out) if out else np.zeros((0, len(self.classes)), np.float32)
