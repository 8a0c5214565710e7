"""The "now" label (runtime/segments.py `now_label`): read off the segment rule's own state,
with its hysteresis — a new label shows once it has held `min_frames` frames, the shown one
holds through `max_gap` frames, a frame under `min_score` votes for nothing and long enough
of those shows "uncertain" — causal and resumable as the segmenter is."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.segments import (
    DISPLAY_RULE,
    UNCERTAIN_BELOW,
    NowLabel,
    Segmenter,
    SegmentRule,
    action_segments,
    now_label,
    now_labels,
)

C = 4  # background + 3 actions
RULE = SegmentRule(min_score=0.6, min_frames=3, max_gap=2)


def probs_of(labels: list[int], score: float = 0.9) -> np.ndarray:
    """[T, C]: frame t's top class labels[t] at `score`; -1 a split frame (nothing above
    0.3)."""
    out = np.zeros((len(labels), C), np.float32)
    for t, label in enumerate(labels):
        if label < 0:
            out[t] = [0.3, 0.3, 0.2, 0.2]
        else:
            out[t] = (1 - score) / (C - 1)
            out[t, label] = score
    return out


def shown(labels: list[int], rule: SegmentRule = RULE, score: float = 0.9) -> list[str]:
    """What each frame shows: "b" background, "?" uncertain, else the action's index."""
    out = []
    for now in now_labels(probs_of(labels, score), rule):
        out.append({"background": "b", "uncertain": "?"}.get(now.kind, str(now.label)))
    return out


def test_the_display_rule_is_the_documented_one() -> None:
    assert DISPLAY_RULE.min_score == UNCERTAIN_BELOW == 0.7
    assert (DISPLAY_RULE.min_frames, DISPLAY_RULE.max_gap) == (3, 4)


def test_a_new_label_shows_once_it_has_held_min_frames() -> None:
    # from the start nothing has held yet: uncertain, then background after 3 frames
    assert shown([0, 0, 0, 0, 1, 1, 1, 1]) == ["?", "?", "b", "b", "b", "b", "1", "1"]


def test_the_shown_label_holds_through_gaps_and_flickers() -> None:
    labels = [1, 1, 1, 2, 1, 0, 0, 1, 1, 0, 0, 0, 0]
    assert shown(labels) == ["?", "?", "1", "1", "1", "1", "1", "1", "1", "1", "1", "b", "b"]


def test_another_action_that_holds_replaces_the_shown_one() -> None:
    labels = [1, 1, 1, 2, 2, 2, 2]
    assert shown(labels) == ["?", "?", "1", "1", "1", "2", "2"]


def test_weak_or_split_frames_show_uncertain_once_the_gap_is_past() -> None:
    labels = [0, 0, 0, -1, -1, -1, -1, 0, 0, 0]
    assert shown(labels) == ["?", "?", "b", "b", "b", "?", "?", "?", "?", "b"]
    # the same frames at a probability under min_score: no votes at all
    assert set(shown([1] * 6, score=0.5)) == {"?"}


def test_out_of_vocabulary_flicker_never_shows_an_action() -> None:
    """Motion no class covers: a different confident action every frame or two."""
    labels = [0, 0, 0, 1, 2, 3, 1, 3, 2, 2, 1, 3, 0, 0, 0]
    assert not {"1", "2", "3"} & set(shown(labels))
    # each frame's argmax would have changed 9 times
    raw = probs_of(labels).argmax(1)
    assert int((np.diff(raw) != 0).sum()) == 9
    smooth = shown(labels)
    assert sum(a != b for a, b in itertools.pairwise(smooth)) <= 3


def test_the_shown_action_is_the_open_segment() -> None:
    scores = probs_of([0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 0])
    segmenter = Segmenter(RULE)
    nows: list[NowLabel] = []
    for probs in scores:
        segmenter.push(probs)
        nows.append(now_label(segmenter, probs))
    (segment,) = action_segments(scores, RULE)
    actions = [n for n in nows if n.kind == "action"]
    assert {n.label for n in actions} == {segment.label}
    last = actions[-1].segment
    assert last is not None and (last.start, last.end) == (segment.start, segment.end)
    assert nows[5].score == pytest.approx(0.9)  # this frame's probability of the shown class
    assert nows[0] == NowLabel("uncertain", None, pytest.approx(0.9))
    assert nows[-1].kind == "background" and nows[-1].label == 0


def test_without_a_background_class_nothing_open_is_uncertain() -> None:
    scores = probs_of([0, 0, 0, 0])  # class 0 is an action like the others then
    kinds = [n.kind for n in now_labels(scores, RULE, background_index=None)]
    assert kinds == ["uncertain", "uncertain", "action", "action"]
    scores = probs_of([-1, -1, -1])
    assert {n.kind for n in now_labels(scores, RULE, background_index=None)} == {"uncertain"}


def test_now_label_reads_and_never_changes_the_segmenter() -> None:
    segmenter = Segmenter(RULE)
    for probs in probs_of([1, 1, 1, 0]):
        segmenter.push(probs)
    state = segmenter.dump()
    now_label(segmenter, probs_of([2])[0])
    assert segmenter.dump() == state
    with pytest.raises(ValueError, match="one frame"):
        now_label(segmenter, probs_of([1, 1]))


random_clips = st.integers(0, 2**32 - 1).map(
    lambda seed: np.random.default_rng(seed).dirichlet(np.full(C, 0.3), size=50)
)
rules = st.builds(
    SegmentRule,
    min_score=st.sampled_from([0.0, 0.3, 0.5, 0.8]),
    min_frames=st.integers(1, 5),
    max_gap=st.integers(0, 4),
)


@settings(max_examples=60, derandomize=True, deadline=None)
@given(random_clips, rules, st.integers(0, 49))
def test_resumed_anywhere_a_stream_shows_the_same(
    scores: np.ndarray, rule: SegmentRule, cut: int
) -> None:
    """The background's track travels with the state (dump / load), so a stream resumed
    on another replica shows what it would have shown."""
    whole = now_labels(scores, rule)
    first = Segmenter(rule)
    shown_live = []
    for probs in scores[:cut]:
        first.push(probs)
        shown_live.append(now_label(first, probs))
    second = Segmenter.load(first.dump(), rule)
    for probs in scores[cut:]:
        second.push(probs)
        shown_live.append(now_label(second, probs))
    assert shown_live == whole


@settings(max_examples=60, derandomize=True, deadline=None)
@given(random_clips, rules)
def test_the_background_track_changes_no_segment(scores: np.ndarray, rule: SegmentRule) -> None:
    """Following the background makes no segments and no transitions: the segments are the
    ones the rule made before it existed (the plain runs under the default rule)."""
    segmenter = Segmenter(rule)
    transitions = [t for probs in scores for t in segmenter.push(probs)]
    assert all(t.segment.label != 0 for t in transitions)
    ended = [t.segment for t in transitions if t.kind == "ended"] + [
        t.segment for t in segmenter.finish()
    ]
    assert ended == action_segments(scores, rule)


def test_a_state_saved_before_the_background_track_loads() -> None:
    old = json.dumps({"frame": 7, "open": [1, 3, 6, 3.2, 0.9, 0.0, 0.0], "candidate": None})
    segmenter = Segmenter.load(old, RULE)
    assert segmenter.quiet is None and segmenter.open is not None
    assert now_label(segmenter, probs_of([1])[0]).kind == "action"
    assert "quiet" not in Segmenter(RULE).dump()  # nothing followed yet: the old format
