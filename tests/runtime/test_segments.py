"""The segment rule (runtime/segments.py): the default thresholds give `to_segments`' runs,
the thresholds do what docs/events.md says, and the rule is causal and resumable — a
segmenter fed frame by frame, or dumped and loaded anywhere, reports what the whole clip's
`action_segments` reports."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.segments import (
    ActionSegment,
    Segmenter,
    SegmentRule,
    Transition,
    action_segments,
    to_segments,
)

C = 4  # background + 3 actions


def probs_of(labels: list[int], scores: list[float] | None = None) -> np.ndarray:
    """[T, C] probabilities whose top class is `labels[t]` with probability `scores[t]`."""
    scores = scores or [0.7] * len(labels)
    out = np.zeros((len(labels), C), np.float32)
    for t, (label, score) in enumerate(zip(labels, scores, strict=True)):
        out[t] = (1 - score) / (C - 1)
        out[t, label] = score
    return out


def spans(segments: list[ActionSegment]) -> list[tuple[int, int, int]]:
    return [(s.label, s.start, s.end) for s in segments]


def feed(segmenter: Segmenter, scores: np.ndarray) -> list[Transition]:
    out = []
    for row in scores:
        out += segmenter.push(row)
    return out + segmenter.finish()


random_clips = st.integers(0, 2**32 - 1).map(
    lambda seed: np.random.default_rng(seed).dirichlet(np.full(C, 0.3), size=60)
)
rules = st.builds(
    SegmentRule,
    min_score=st.sampled_from([0.0, 0.3, 0.5, 0.8]),
    min_frames=st.integers(1, 5),
    max_gap=st.integers(0, 4),
)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(random_clips, st.sampled_from([0, None]))
def test_the_default_rule_gives_exactly_the_runs(scores: np.ndarray, background) -> None:
    labels = scores.argmax(1)
    runs = to_segments(labels, background_index=background)
    segments = action_segments(scores, background_index=background)
    assert spans(segments) == [(r.label, r.start, r.end) for r in runs]
    for seg in segments:
        own = scores[seg.start : seg.end, seg.label]
        assert seg.mean == pytest.approx(float(own.mean()), abs=1e-6)
        assert seg.peak == pytest.approx(float(own.max()))


@settings(max_examples=60, derandomize=True, deadline=None)
@given(random_clips, rules, st.integers(0, 59))
def test_live_resumed_and_offline_agree(scores: np.ndarray, rule: SegmentRule, cut: int) -> None:
    """Frame by frame, with the state dumped and loaded at `cut` (a resume elsewhere), the
    `ended` transitions are the clip's segments, each `started` once before its `ended`."""
    first = Segmenter(rule)
    transitions = []
    for row in scores[:cut]:
        transitions += first.push(row)
    second = Segmenter.load(first.dump(), rule)
    transitions += feed(second, scores[cut:])
    ended = [t.segment for t in transitions if t.kind == "ended"]
    assert ended == action_segments(scores, rule)
    started = [(t.segment.label, t.segment.start) for t in transitions if t.kind == "started"]
    assert started == [(s.label, s.start) for s in ended]
    opened: set[tuple[int, int]] = set()
    for t in transitions:  # started before ended; causal: decided at or after its extent
        key = (t.segment.label, t.segment.start)
        if t.kind == "started":
            opened.add(key)
            # confirmed by its last vote, once it spans min_frames
            assert t.segment.length >= rule.min_frames and t.frame == t.segment.end - 1
        else:
            assert key in opened and t.frame >= t.segment.end - 1
    for a, b in itertools.pairwise(ended):  # never overlapping
        assert a.end <= b.start


def test_min_score_makes_a_weak_frame_a_non_vote() -> None:
    scores = probs_of([1, 1, 1, 1], [0.9, 0.4, 0.9, 0.9])
    assert spans(action_segments(scores, SegmentRule(min_score=0.5))) == [(1, 0, 1), (1, 2, 4)]
    bridged = SegmentRule(min_score=0.5, max_gap=1)
    (segment,) = action_segments(scores, bridged)
    assert (segment.start, segment.end) == (0, 4)
    assert segment.mean == pytest.approx((0.9 + 0.4 + 0.9 + 0.9) / 4)  # the gap's own score
    assert segment.peak == pytest.approx(0.9)


def test_min_frames_drops_flickers_and_starts_a_segment_at_its_first_frame() -> None:
    labels = [0, 2, 0, 1, 1, 1, 1, 0, 3, 3, 0]
    segmenter = Segmenter(SegmentRule(min_frames=3))
    started = [t for row in probs_of(labels) for t in segmenter.push(row) if t.kind == "started"]
    (start,) = started
    assert (start.segment.label, start.segment.start, start.frame) == (1, 3, 5)  # 3 frames in
    assert spans(action_segments(probs_of(labels), SegmentRule(min_frames=3))) == [(1, 3, 7)]


def test_max_gap_merges_across_background_and_brief_other_actions() -> None:
    labels = [1, 1, 0, 1, 2, 1, 1, 0, 0, 0, 1, 1]
    rule = SegmentRule(min_frames=2, max_gap=2)  # a one-frame "2" is no segment: bridged
    assert spans(action_segments(probs_of(labels), rule)) == [(1, 0, 7), (1, 10, 12)]
    one = SegmentRule(max_gap=2)  # with min_frames 1 it is one: it ends the first
    assert spans(action_segments(probs_of(labels), one)) == [
        (1, 0, 4),
        (2, 4, 5),
        (1, 5, 7),
        (1, 10, 12),
    ]
    segmenter = Segmenter(rule)
    ended = [t for row in probs_of(labels) for t in segmenter.push(row) if t.kind == "ended"]
    assert [(t.frame, t.reason) for t in ended] == [(9, "gap")]  # last vote 6, gap 2
    assert [t.reason for t in segmenter.finish()] == ["end"]


def test_another_action_that_lasts_ends_the_open_segment() -> None:
    labels = [1, 1, 1, 2, 2, 2, 2]
    segmenter = Segmenter(SegmentRule(min_frames=2, max_gap=3))
    made = feed(segmenter, probs_of(labels))
    assert [(t.kind, t.segment.label, t.segment.start, t.segment.end, t.frame, t.reason)
            for t in made] == [
        ("started", 1, 0, 2, 1, ""),
        ("ended", 1, 0, 3, 4, "next"),
        ("started", 2, 3, 5, 4, ""),
        ("ended", 2, 3, 7, 6, "end"),
    ]  # fmt: skip


def test_a_held_frame_counts_as_many_frames() -> None:
    """A live stream holds its newest probabilities over rows a camera skipped."""
    rule = SegmentRule(min_frames=2, max_gap=1)
    row = probs_of([1])[0]
    once, held = Segmenter(rule), Segmenter(rule)
    assert held.push(row, frames=3) == [t for _ in range(3) for t in once.push(row)]
    assert held.dump() == once.dump() and held.frame == 3


def test_the_state_is_small_json_and_thresholds_are_checked() -> None:
    segmenter = Segmenter(SegmentRule(max_gap=2))
    for row in probs_of([1, 1, 0]):
        segmenter.push(row)
    assert len(segmenter.dump()) < 200
    assert Segmenter.load(segmenter.dump()).open == segmenter.open
    for bad in ({"min_score": 1.5}, {"min_frames": 0}, {"max_gap": -1}):
        with pytest.raises(ValueError):
            SegmentRule(**bad)
    with pytest.raises(ValueError, match="one frame"):
        Segmenter().push(np.zeros((2, C)))
