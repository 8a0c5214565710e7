"""Per-frame labels → segments. numpy only.

`to_segments`: runs of one label, what evaluation (training/metrics.py) scores against.
`Segmenter`: the segment rule — causal, one frame at a time, with thresholds
(`SegmentRule`: minimum score, minimum duration, gap to merge) — that makes a live stream's
action events and `/classify`'s segments (`action_segments`), so the two agree on the same
frames. With the default thresholds it gives exactly `to_segments`' runs.
`now_label`: what a stream shows as its current label, read off a Segmenter (its open
segment, background once held, or "uncertain"); `DISPLAY_RULE` the rule it is shown by.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class Segment:
    """A run of one label: frames [start, end)."""

    label: int
    start: int  # first frame, inclusive
    end: int  # last frame, exclusive

    @property
    def length(self) -> int:
        return self.end - self.start


def check_labels(name: str, labels: np.ndarray) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1:
        shape = "[" + ", ".join(str(n) for n in labels.shape) + "]"
        raise ValueError(f"{name} has shape {shape}: expected per-frame labels [frames]")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} has dtype {labels.dtype}: expected integer class indices")
    return labels


def to_segments(
    labels: np.ndarray,
    *,
    background_index: int | None = 0,
    ignore_index: int | None = None,
) -> list[Segment]:
    """Runs of equal consecutive per-frame labels [T], without background and ignore runs."""
    labels = check_labels("labels", labels)
    if not labels.size:
        return []
    starts = np.r_[0, np.flatnonzero(np.diff(labels)) + 1]
    ends = np.r_[starts[1:], labels.size]
    excluded = {background_index, ignore_index} - {None}
    return [
        Segment(label=int(labels[s]), start=int(s), end=int(e))
        for s, e in zip(starts, ends, strict=True)
        if int(labels[s]) not in excluded
    ]


# --------------------------------------------------------------------------- the segment rule
#
# One rule turns a stream of per-frame probabilities into action segments, frame by frame and
# causally: the service's live events (service/events/), `/classify`'s segments and the demo
# page's smoothed label all come from `Segmenter`. `to_segments` above stays the plain runs
# evaluation scores against.


@dataclass(frozen=True)
class SegmentRule:
    """The thresholds of the segment rule (docs/events.md). The defaults make exactly the
    runs of one non-background label (`to_segments`)."""

    min_score: float = 0.0  # a frame votes for its top class only at or above this probability
    min_frames: int = 1  # a track becomes a segment once it spans this many frames
    max_gap: int = 0  # frames without a vote for it that a track bridges

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be within [0, 1], got {self.min_score}")
        if self.min_frames < 1:
            raise ValueError(f"min_frames must be at least 1, got {self.min_frames}")
        if self.max_gap < 0:
            raise ValueError(f"max_gap must be at least 0, got {self.max_gap}")


@dataclass(frozen=True)
class ActionSegment:
    """A segment of one action: frames [start, end), with the peak and the mean of that
    action's probability over them."""

    label: int
    start: int
    end: int  # exclusive
    peak: float
    mean: float

    @property
    def length(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Track:
    """One action's votes as they stand: frames start..last (inclusive, `last` the latest frame
    that voted for it), and its probability summed and maximised over them. `tail_*` hold the
    frames after `last`, folded in if the track goes on within the gap."""

    label: int
    start: int
    last: int
    total: float
    peak: float
    tail_total: float = 0.0
    tail_peak: float = 0.0

    @classmethod
    def first(cls, label: int, frame: int, p: float) -> Track:
        return cls(label, frame, frame, p, p)

    @property
    def end(self) -> int:
        return self.last + 1

    def voted(self, frame: int, p: float) -> Track:
        return Track(
            self.label,
            self.start,
            frame,
            self.total + self.tail_total + p,
            max(self.peak, self.tail_peak, p),
        )

    def missed(self, p: float) -> Track:
        tail = self.tail_total + p
        return replace(self, tail_total=tail, tail_peak=max(self.tail_peak, p))

    def segment(self) -> ActionSegment:
        return ActionSegment(
            self.label, self.start, self.end, self.peak, self.total / (self.end - self.start)
        )

    def dump(self) -> list[float]:
        return [self.label, self.start, self.last, self.total, self.peak, *self.tails]

    @property
    def tails(self) -> tuple[float, float]:
        return self.tail_total, self.tail_peak

    @classmethod
    def load(cls, values: list[float]) -> Track:
        label, start, last, total, peak, tail_total, tail_peak = values
        return cls(int(label), int(start), int(last), total, peak, tail_total, tail_peak)


Reason = Literal["", "gap", "next", "end", "expired"]


@dataclass(frozen=True)
class Transition:
    """What one frame changed: a segment `started` (its start may lie before the frame that
    confirmed it) or `ended` — by a gap longer than the rule bridges, by the `next` action's
    segment starting, at the `end` of the input, or when its stream `expired` unresumed."""

    kind: Literal["started", "ended"]
    segment: ActionSegment
    frame: int  # the frame that decided it
    reason: Reason = ""


class Segmenter:
    """The segment rule, one frame at a time (causal: a frame's transitions depend only on
    the frames up to it).

    Each frame votes for its top class when that class is not background and its probability
    is at least `min_score`. An action's votes form a *track* while consecutive votes are at
    most `max_gap` frames apart (frames voting for nothing or for another class in between);
    a vote for another class interrupts a track that is not yet a segment. A track becomes a
    segment — `started`, from its first vote — once it spans `min_frames` frames; the open
    segment `ended` at its last vote when the gap grows past `max_gap`, when another action's
    track becomes a segment, or at `finish`. At most one segment is open; segments never
    overlap. Its state is a few numbers (`dump` / `load`), kept with a stream's state so that
    a stream resumed anywhere continues the same open segment.

    Beside them it follows the background by the same rule (`quiet`: frames whose top class
    is background at `min_score` or more, bridged over `max_gap`), which makes no segments
    and no transitions: `now_label` reads it to show background only once it has held
    `min_frames` frames, as an action must.
    """

    def __init__(
        self, rule: SegmentRule | None = None, *, background_index: int | None = 0, frame: int = 0
    ) -> None:
        self.rule = rule or SegmentRule()
        self.background_index = background_index
        self.frame = frame  # the index of the next frame
        self.open: Track | None = None  # the segment started and not ended
        self.candidate: Track | None = None  # a track not yet long enough
        self.quiet: Track | None = None  # the background's track (no segments, no events)

    def push(self, probs: np.ndarray, frames: int = 1) -> list[Transition]:
        """Feed `frames` frames with these class probabilities [C]; the transitions they make."""
        probs = np.asarray(probs)
        if probs.ndim != 1 or not probs.size:
            raise ValueError(f"probabilities must be one frame's [classes], got {probs.shape}")
        top = int(probs.argmax())
        score = float(probs[top])
        vote = None
        if top != self.background_index and score >= self.rule.min_score:
            vote = top
        quiet = top == self.background_index and score >= self.rule.min_score
        transitions: list[Transition] = []
        for _ in range(frames):
            self._follow_background(probs, quiet)
            transitions += self._step(probs, vote, score)
        return transitions

    def _follow_background(self, probs: np.ndarray, vote: bool) -> None:
        """The background's track, by the rule's score and gap (before `_step` counts the
        frame)."""
        if self.background_index is None:
            return
        frame, track = self.frame, self.quiet
        p = float(probs[self.background_index])
        if vote:
            track = (
                Track.first(self.background_index, frame, p)
                if track is None
                else (track.voted(frame, p))
            )
        elif track is not None:
            track = track.missed(p)
            if frame - track.last > self.rule.max_gap:
                track = None
        self.quiet = track

    @property
    def background_held(self) -> bool:
        """The background has held: its track spans `min_frames` frames and its last vote
        lies within `max_gap` frames."""
        quiet = self.quiet
        return quiet is not None and quiet.end - quiet.start >= self.rule.min_frames

    def _step(self, probs: np.ndarray, vote: int | None, score: float) -> list[Transition]:
        frame, rule = self.frame, self.rule
        self.frame += 1
        opened, candidate = self.open, self.candidate
        out: list[Transition] = []
        if opened is not None:
            p = float(probs[opened.label])
            if vote == opened.label:
                opened, candidate = opened.voted(frame, p), None
            else:
                opened = opened.missed(p)
        if vote is not None and (opened is None or vote != opened.label):
            if candidate is not None and candidate.label == vote:
                candidate = candidate.voted(frame, score)
            else:
                candidate = Track.first(vote, frame, score)
            if candidate.end - candidate.start >= rule.min_frames:
                if opened is not None:
                    out.append(Transition("ended", opened.segment(), frame, "next"))
                opened, candidate = candidate, None
                out.append(Transition("started", opened.segment(), frame))
        elif candidate is not None and vote != candidate.label:
            candidate = candidate.missed(float(probs[candidate.label]))
        if opened is not None and frame - opened.last > rule.max_gap:
            out.append(Transition("ended", opened.segment(), frame, "gap"))
            opened = None
        if candidate is not None and frame - candidate.last > rule.max_gap:
            candidate = None
        self.open, self.candidate = opened, candidate
        return out

    def finish(self, reason: Reason = "end") -> list[Transition]:
        """The input ended (or, `expired`, its stream was given up): the open segment ends
        at its last vote."""
        opened, self.open, self.candidate, self.quiet = self.open, None, None, None
        if opened is None:
            return []
        return [Transition("ended", opened.segment(), self.frame - 1, reason)]

    def copy(self) -> Segmenter:
        twin = Segmenter(self.rule, background_index=self.background_index, frame=self.frame)
        twin.open, twin.candidate = self.open, self.candidate  # immutable tracks
        twin.quiet = self.quiet
        return twin

    def dump(self) -> str:
        """The state as compact JSON (floats round-trip exactly)."""
        state = {
            "frame": self.frame,
            "open": None if self.open is None else self.open.dump(),
            "candidate": None if self.candidate is None else self.candidate.dump(),
        }
        if self.quiet is not None:  # a state written before it existed loads without it
            state["quiet"] = self.quiet.dump()
        return json.dumps(state, separators=(",", ":"))

    @classmethod
    def load(
        cls, text: str, rule: SegmentRule | None = None, *, background_index: int | None = 0
    ) -> Segmenter:
        """A segmenter continuing from `dump`'s text."""
        state = json.loads(text)
        segmenter = cls(rule, background_index=background_index, frame=int(state["frame"]))
        if state.get("open") is not None:
            segmenter.open = Track.load(state["open"])
        if state.get("candidate") is not None:
            segmenter.candidate = Track.load(state["candidate"])
        if state.get("quiet") is not None:
            segmenter.quiet = Track.load(state["quiet"])
        return segmenter


def action_segments(
    scores: np.ndarray, rule: SegmentRule | None = None, *, background_index: int | None = 0
) -> list[ActionSegment]:
    """The segments of a whole clip's probabilities [T, C] by the segment rule: what a live
    stream of the same frames reports as events. With the default rule, `to_segments` of the
    per-frame argmax."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [frames, classes], got shape {list(scores.shape)}")
    segmenter = Segmenter(rule, background_index=background_index)
    segments = []
    for probs in scores:
        segments += [t.segment for t in segmenter.push(probs) if t.kind == "ended"]
    segments += [t.segment for t in segmenter.finish()]
    return segments


# --------------------------------------------------------------------------- the "now" label
#
# What a stream shows as its current label (the demo page, `label` messages) is the segment
# rule's own state, so the shown label and the events are one decision: the open segment's
# action; else background, once the background has held as an action must; else
# "uncertain". The rule's hysteresis is the smoothing: a new label (action or background)
# shows once it has held `min_frames` frames, the shown one holds through gaps of `max_gap`
# frames, and a frame whose top probability is under `min_score` votes for nothing — when
# nothing has had a vote for longer than the gap, the label is "uncertain".
# DISPLAY_RULE was chosen on held-out motion, out-of-vocabulary motion and real footage
# (docs/pose.md, "A now label you can trust"; docs/real-footage/now_label.py measures it).

UNCERTAIN_BELOW = 0.7  # a top probability under this is no vote: long enough, "uncertain"
# At 4 fps: a new label shows after 0.75 s of it, the shown one holds through 1 s without.
DISPLAY_RULE = SegmentRule(min_score=UNCERTAIN_BELOW, min_frames=3, max_gap=4)

NowKind = Literal["action", "background", "uncertain"]


@dataclass(frozen=True)
class NowLabel:
    """What a frame shows: an `action` (the open segment's class `label`, with `segment` as
    it stands), `background` (`label` the background index), or `uncertain` (`label` None).
    `score`: this frame's probability of the shown class (the top class's when uncertain)."""

    kind: NowKind
    label: int | None
    score: float
    segment: ActionSegment | None = None


def now_label(segmenter: Segmenter, probs: np.ndarray) -> NowLabel:
    """What to show for the frame whose probabilities `probs` [C] were just pushed into
    `segmenter`: its open segment's action if one is open; else background if the
    background has held (`Segmenter.background_held`: `min_frames` votes, the last within
    `max_gap` frames); else "uncertain" — frames too weak to vote (top probability under
    the rule's `min_score`, UNCERTAIN_BELOW for DISPLAY_RULE), split between labels, or an
    action not yet held long enough. Reads the segmenter, changes nothing."""
    probs = np.asarray(probs)
    if probs.ndim != 1 or not probs.size:
        raise ValueError(f"probabilities must be one frame's [classes], got {probs.shape}")
    opened = segmenter.open
    if opened is not None:
        return NowLabel("action", opened.label, float(probs[opened.label]), opened.segment())
    background = segmenter.background_index
    if background is not None and segmenter.background_held:
        return NowLabel("background", background, float(probs[background]))
    return NowLabel("uncertain", None, float(probs.max()))


def now_labels(
    scores: np.ndarray, rule: SegmentRule = DISPLAY_RULE, *, background_index: int | None = 0
) -> list[NowLabel]:
    """`now_label` of every frame of a clip's probabilities [T, C], as a stream shows them."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [frames, classes], got shape {list(scores.shape)}")
    segmenter = Segmenter(rule, background_index=background_index)
    shown = []
    for probs in scores:
        segmenter.push(probs)
        shown.append(now_label(segmenter, probs))
    return shown
