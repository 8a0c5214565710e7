"""The stream session against a fake model (service.session.StreamModel) and the in-process
feature cache: no training, no Redis, no socket — the frame path's rules in milliseconds.

The fake model's probabilities name the row they were asked about (class = row % C), so a
label says which row was scored; it records every state it was asked to score.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from pydantic import TypeAdapter

from runtime.segments import DISPLAY_RULE
from service import wire
from service.cache import CacheUnavailable, MemoryFeatureCache, StreamState
from service.encoding import Encoded
from service.metrics import Metrics
from service.session import Frame, StreamOptions, StreamSession

FPS = 4.0
DIM = 3
CLASSES = ("background", "walk", "run", "jump")


@dataclass
class FakePackage:
    fps: float = FPS
    classes: tuple[str, ...] = CLASSES
    feature_dim: int = DIM
    encoder: None = None  # feature rows only
    version: str = "1"
    background_index: int = 0


@dataclass
class FakeModel:
    package: FakePackage = field(default_factory=FakePackage)
    preprocess: Any = None  # feature rows only
    scored: list[StreamState] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    span: int = 8

    def describe(self) -> dict[str, Any]:
        return {
            "name": "fake",
            "version": "1",
            "classes": list(CLASSES),
            "background_index": 0,
            "fps": FPS,
            "window": None,
            "accepts": ["features"],
        }

    def prepare(self, rgb: np.ndarray) -> Any:
        raise AssertionError("a features stream never decodes")

    async def encode(self, prepared: Any, track: Any = None) -> Encoded:
        raise AssertionError("a features stream never encodes")

    async def scores(self, state: StreamState) -> np.ndarray:
        self.scored.append(state)
        probs = np.full(len(CLASSES), 0.1, np.float32)
        probs[(state.total_rows - 1) % len(CLASSES)] = 0.7
        return probs

    def forget(self, stream: str) -> None:
        self.forgotten.append(stream)


class FlakyCache(MemoryFeatureCache):
    """The in-process cache, unreachable for the next `fail` stores."""

    fail: int = 0

    async def store(self, following: StreamState) -> StreamState:
        if self.fail:
            self.fail -= 1
            raise CacheUnavailable("redis://cache:6379 timed out")
        return await super().store(following)


def conforms(message: Any) -> None:
    """`message` is one of service/wire.py's server messages, with no field it does not name."""
    kind = {"ready": wire.Ready, "error": wire.Error, "end": wire.End, "dropped": wire.Dropped}
    typed = kind.get(message["type"]) or (wire.NoLabel if message["label"] is None else wire.Label)
    TypeAdapter(typed).validate_python(message, strict=False)
    assert set(message) <= set(typed.__annotations__), set(message) - set(typed.__annotations__)


def row(value: float) -> np.ndarray:
    return np.full(DIM, value, np.float32)


def frame(seq: int | None, ts: float, value: float) -> Frame:
    return Frame(seq, ts, features=row(value))


async def open_session(
    cache: MemoryFeatureCache, model: FakeModel, *, carry_over: bool = True, span: int = 8
) -> StreamSession:
    state = await cache.attach("cam", dim=DIM, span=span)
    options = StreamOptions(1 << 20, 1 << 20, carry_over=carry_over, top_k=2)
    return StreamSession("cam", state, options, model=model, cache=cache, metrics=Metrics())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_each_taken_frame_is_scored_once_stored_and_labelled_by_its_row() -> None:
    async def go() -> tuple[list[Any], StreamSession, MemoryFeatureCache, FakeModel]:
        cache, model = MemoryFeatureCache(), FakeModel()
        session = await open_session(cache, model)
        replies = [await session.process(frame(s, s / FPS, s)) for s in range(6)]
        return replies, session, cache, model

    replies, session, cache, model = run(go())
    assert [r["row"] for r in replies] == list(range(6))
    assert [r["label"] for r in replies] == [CLASSES[i % 4] for i in range(6)]
    assert replies[1]["top"] == [("walk", 0.7), ("background", 0.1)]
    assert [s.total_rows for s in model.scored] == [1, 2, 3, 4, 5, 6]
    assert session.state.total_rows == 6 and session.processed == 6
    np.testing.assert_array_equal(session.state.rows[:, 0], np.arange(6))
    stored = run(cache.attach("cam", dim=DIM, span=8))  # what a reconnect would find
    assert stored.total_rows == 6 and stored.meta["next_seq"] == 6


def test_a_frame_in_a_filled_slot_is_carried_over_or_silent() -> None:
    async def go(carry: bool) -> list[Any]:
        session = await open_session(MemoryFeatureCache(), FakeModel(), carry_over=carry)
        return [
            await session.process(frame(0, 0.0, 1)),
            await session.process(frame(1, 0.1, 2)),  # the same 0.25 s slot
        ]

    first, carried = run(go(True))
    conforms(first)
    conforms(carried)
    assert carried["carried"] and carried["seq"] == 1 and carried["row"] == first["row"] == 0
    assert carried["label"] == first["label"]
    assert run(go(False))[1] is None


def test_a_gap_repeats_the_previous_row_and_scores_the_newest_once() -> None:
    async def go() -> tuple[Any, StreamSession, FakeModel]:
        model = FakeModel()
        session = await open_session(MemoryFeatureCache(), model)
        await session.process(frame(0, 0.0, 1))
        reply = await session.process(frame(1, 3 / FPS, 2))  # slots 1 and 2 skipped
        return reply, session, model

    reply, session, model = run(go())
    assert reply["row"] == 3 and [s.total_rows for s in model.scored] == [1, 4]
    np.testing.assert_array_equal(session.state.rows[:, 0], [1, 1, 1, 2])


def test_refused_frames_change_nothing() -> None:
    async def go() -> tuple[list[Any], StreamSession]:
        session = await open_session(MemoryFeatureCache(), FakeModel())
        replies = [await session.process(frame(5, 0.0, 1))]
        replies.append(await session.process(frame(5, 0.25, 2)))  # seq replayed
        replies.append(await session.process(frame(6, float("nan"), 2)))  # bad timestamp
        replies.append(await session.process(Frame(6, 0.25, image=b"\xff\xd8")))  # no encoder
        replies.append(await session.process(frame(6, 0.25, 3)))  # the same seq and slot: taken
        return replies, session

    replies, session = run(go())
    for reply in replies:
        conforms(reply)
    assert [r["type"] for r in replies] == ["label", "error", "error", "error", "label"]
    assert [r.get("code") for r in replies[1:4]] == ["seq", "timestamp", "frame"]
    assert replies[4]["seq"] == 6 and replies[4]["row"] == 1  # no row was lost or added
    assert session.state.total_rows == 2 and session.next_seq == 7


def test_a_row_the_cache_dtype_cannot_hold_is_refused_and_rolled_back() -> None:
    async def go() -> tuple[list[Any], StreamSession]:
        session = await open_session(MemoryFeatureCache(dtype_name="float16"), FakeModel())
        big = Frame(0, 0.0, features=row(1e6))  # past float16's 65504
        replies = [await session.process(big), await session.process(frame(0, 0.0, 1 / 3))]
        return replies, session

    (refused, taken), session = run(go())
    assert refused["type"] == "error" and refused["code"] == "features"
    assert taken["row"] == 0
    # Rounded once, through the cache's dtype: what a resumed stream reads back.
    assert session.state.rows[0, 0] == np.float32(np.float16(1 / 3))


def test_a_cache_outage_refuses_the_frame_for_a_retry_and_keeps_the_stream() -> None:
    async def go() -> tuple[list[Any], StreamSession]:
        cache = FlakyCache()
        session = await open_session(cache, FakeModel())
        replies = [await session.process(frame(0, 0.0, 1))]
        cache.fail = 1
        replies.append(await session.process(frame(1, 0.25, 2)))
        replies.append(await session.process(frame(1, 0.25, 2)))  # the client retries it
        return replies, session

    replies, session = run(go())
    assert replies[1]["type"] == "error" and replies[1]["retry"] and replies[1]["code"] == "cache"
    assert replies[2]["type"] == "label" and replies[2]["row"] == 1
    assert [b["seq"] for b in session.recent] == [0, 1]  # the failed try left no label


def test_a_resumed_stream_continues_its_rows_seq_and_recent_labels() -> None:
    async def go() -> tuple[Any, Any, Any]:
        cache = MemoryFeatureCache()
        first = await open_session(cache, FakeModel())
        for s in range(3):
            await first.process(frame(s, s / FPS, s))
        second = await open_session(cache, FakeModel())  # the client reconnected
        ready = second.ready()
        carried = await second.process(frame(3, 2.1 / FPS, 9))  # slot 2: carried over
        taken = await second.process(frame(4, 3 / FPS, 9))
        return ready, carried, taken

    ready, carried, taken = run(go())
    for message in (ready, carried, taken):
        conforms(message)
    assert ready["resumed"] and ready["rows"] == 3 and ready["next_seq"] == 3
    assert [b["row"] for b in ready["recent"]] == [0, 1, 2]
    assert carried["carried"] and carried["row"] == 2
    assert taken["row"] == 3 and taken["label"] == CLASSES[3]


def test_end_forgets_the_stream_everywhere() -> None:
    async def go() -> tuple[Any, FakeModel, StreamState]:
        cache, model = MemoryFeatureCache(), FakeModel()
        session = await open_session(cache, model)
        await session.process(frame(0, 0.0, 1))
        end = await session.end()
        return end, model, await cache.attach("cam", dim=DIM, span=8)

    end, model, after = run(go())
    conforms(end)
    assert end == {"type": "end", "stream": "cam", "rows": 1, "processed": 1, "carried": 0}
    assert model.forgotten == ["cam"] and after.total_rows == 0 and not after.resumed


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_non_finite_row_is_refused(value: float) -> None:
    async def go() -> Any:
        session = await open_session(MemoryFeatureCache(), FakeModel())
        return await session.process(Frame(0, 0.0, features=row(value)))

    assert run(go())["code"] == "features"


@dataclass
class ScriptedModel(FakeModel):
    """Scores each row by a script: row i → class script[i][0] at probability script[i][1]."""

    script: list[tuple[int, float]] = field(default_factory=list)

    async def scores(self, state: StreamState) -> np.ndarray:
        index, p = self.script[state.total_rows - 1]
        probs = np.full(len(CLASSES), (1 - p) / (len(CLASSES) - 1), np.float32)
        probs[index] = p
        return probs


def test_the_shown_label_holds_until_the_action_changes_by_the_event_rule() -> None:
    """`now` is the stream's segment rule (the events'): an action shows once it has held
    min_frames, holds through weak frames, and gives way once another one has held."""
    walk, run_ = CLASSES.index("walk"), CLASSES.index("run")
    script = [(walk, 0.9)] * 4 + [(run_, 0.5)] * 2 + [(run_, 0.9)] * 3

    async def go() -> list[Any]:
        cache, model = MemoryFeatureCache(), ScriptedModel(script=script)
        state = await cache.attach("cam", dim=DIM, span=16)
        options = StreamOptions(1 << 20, 1 << 20, segment_rule=DISPLAY_RULE)
        session = StreamSession("cam", state, options, model=model, cache=cache, metrics=Metrics())
        return [await session.process(frame(s, s / FPS, s)) for s in range(len(script))]

    replies = run(go())
    for reply in replies:
        conforms(reply)
    shown = [(r["now"]["kind"], r["now"]["label"]) for r in replies]
    assert [r["label"] for r in replies] == ["walk"] * 4 + ["run"] * 5  # each frame's own
    uncertain, walking, running = ("uncertain", None), ("action", "walk"), ("action", "run")
    assert shown == [uncertain] * 2 + [walking] * 6 + [running]
    assert replies[2]["now"]["since"] == 0.0 and replies[-1]["now"]["since"] == 6 / FPS
    assert replies[4]["now"]["score"] == pytest.approx(0.5 / 3, abs=1e-6)  # walk's, this frame


@dataclass
class ShiftedModel(FakeModel):
    """A later version: labels row i as class (i + 1) % C, so its labels show which version
    made them."""

    async def scores(self, state: StreamState) -> np.ndarray:
        self.scored.append(state)
        probs = np.full(len(CLASSES), 0.1, np.float32)
        probs[state.total_rows % len(CLASSES)] = 0.7
        return probs


def test_a_stream_moves_to_the_current_version_between_frames_and_keeps_its_window() -> None:
    v2 = ShiftedModel(package=FakePackage(version="2"))
    wider = ShiftedModel(package=FakePackage(version="3", feature_dim=DIM + 1))
    current: list[Any] = []

    async def go() -> tuple[list[Any], StreamSession, FakeModel]:
        cache, v1 = MemoryFeatureCache(), FakeModel()
        current.append(v1)
        state = await cache.attach("cam", dim=DIM, span=8)
        options = StreamOptions(1 << 20, 1 << 20)
        session = StreamSession(
            "cam",
            state,
            options,
            model=v1,
            cache=cache,
            metrics=Metrics(),
            follow=lambda: current[-1],
        )
        replies = [await session.process(frame(s, s / FPS, s)) for s in range(3)]
        current.append(v2)  # a switch: the next frame is v2's, on the same window
        replies += [await session.process(frame(s, s / FPS, s)) for s in range(3, 6)]
        current.append(wider)  # rows of another size: the stream stays on v2
        replies += [await session.process(frame(s, s / FPS, s)) for s in range(6, 8)]
        return replies, session, v1

    replies, session, v1 = run(go())
    assert [r["row"] for r in replies] == list(range(8))  # no frame lost, rows go on
    assert [r["version"] for r in replies] == ["1"] * 3 + ["2"] * 5
    assert [r["label"] for r in replies] == [CLASSES[i % 4] for i in range(3)] + [
        CLASSES[(i + 1) % 4] for i in range(3, 8)
    ]
    assert v1.forgotten == ["cam"]  # the old version let the stream go
    assert [s.total_rows for s in v2.scored] == [4, 5, 6, 7, 8]  # the window carried over
    np.testing.assert_array_equal(v2.scored[0].rows[:, 0], np.arange(4))
    assert not wider.scored and session.kept_on is wider
