"""The stream socket's messages, as types: built by the session (service/session.py) and
the socket handler (service/api/ws.py), read by the client (service/client.py), and
documented for users in docs/wire.md, which `python -m service.wire` writes from these
types (a test keeps it current).

Server → client, in order: one `ready`, then per frame a `label` (or an `error` for a
frame that could not be used; `dropped` for frames a full queue let go), and `end` before
a normal close. Client → server: binary messages are one encoded image; text messages are
`frame`, `features` or `end`.

Action events (`Event`, service/events/) are not on the stream socket: they go to the event
sinks (Redis Streams, MQTT, webhooks) and `GET /v1/events` (docs/events.md).
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any, Literal, NotRequired

from typing_extensions import TypedDict  # pydantic reads this one on Python 3.11

from runtime.pose.view import PoseWire, Skeleton

# --- client → server -----------------------------------------------------------------


class FrameIn(TypedDict):
    """One camera frame as JSON (or send the JPEG/PNG bytes as a binary message)."""

    type: Literal["frame"]
    image: str  # base64 of a JPEG, PNG, WebP or BMP
    seq: NotRequired[int]  # 0 … 2**63-1; default: the next one
    ts: NotRequired[float]  # capture time, seconds, |ts| <= 1e12; default: arrival time


class FeaturesIn(TypedDict):
    """One feature row (for a package that reads feature rows)."""

    type: Literal["features"]
    data: str  # base64 of feature_dim little-endian float32 values
    seq: NotRequired[int]
    ts: NotRequired[float]


class EndIn(TypedDict):
    """The stream is over: its window and rings are freed."""

    type: Literal["end"]


# --- server → client -----------------------------------------------------------------


class ModelRef(TypedDict):
    name: str
    version: str


class Brief(TypedDict):
    """A label as kept with the stream's state: what a resumed client missed."""

    seq: int
    row: int
    t: float
    label: str
    index: int
    score: float


class Ready(TypedDict):
    """The first message: the model, and where a resumed stream stands."""

    type: Literal["ready"]
    stream: str
    model: ModelRef
    classes: list[str]
    background_index: int | None
    fps: float
    window: dict[str, Any] | None  # the window head's (long, short, stride); None: streaming
    accepts: list[str]  # "features", and "image" when the package has an encoder
    delivery: Literal["live", "lossless"]
    resumed: bool
    rows: int  # feature rows the stream has had
    next_seq: int
    last_ts: float | None  # a resumed stream's last capture time: send later ones
    recent: list[Brief]  # the labels of the last frames stored
    skeleton: NotRequired[Skeleton]  # a pose encoder's packages: the joints labels carry


class Now(TypedDict):
    """What to show for the stream now: the segment rule (runtime/segments.py, the one that
    makes events) over the frames so far — an action once it has held, background once it
    has held, else uncertain (too weak, or labels flickering). Changes only when the action
    does (the message's own `label` is this one frame's top class)."""

    kind: Literal["action", "background", "uncertain"]
    label: str | None  # null when uncertain
    index: int | None
    score: float  # this frame's probability of the shown class (of the top one: uncertain)
    since: float | None  # an action: when its segment started (s from the stream's start)


class Label(TypedDict):
    """One frame's label: the class with the highest probability, and the top k."""

    type: Literal["label"]
    seq: int
    row: int  # the feature row it labels
    t: float  # row / fps: seconds since the stream started
    label: str
    index: int
    score: float
    top: list[tuple[str, float]]
    carried: bool  # true: fps sampling skipped this frame; the latest label again
    latency_ms: float  # from the frame's arrival to its label
    version: str  # the model version that labelled it (streams move to a new one live)
    # A pose encoder's packages: whether a person was in view (false: the label is the
    # model's answer for nobody, not an action it saw).
    person: NotRequired[bool]
    now: NotRequired[Now]  # what to show: the label smoothed by the segment rule
    pose: NotRequired[PoseWire]  # `?pose=1`: the joints and tracked box the model saw


class NoLabel(TypedDict):
    """A frame carried over before the stream has any label."""

    type: Literal["label"]
    seq: int
    carried: Literal[True]
    label: None


class Error(TypedDict):
    """A frame or message refused; the stream goes on."""

    type: Literal["error"]
    code: str  # service/errors.py's code for it
    error: str
    seq: NotRequired[int]
    retry: NotRequired[bool]  # true: the same frame may succeed later (e.g. cache down)


class Dropped(TypedDict):
    """A frame a full queue let go (live delivery)."""

    type: Literal["dropped"]
    seq: int | None
    reason: str


class End(TypedDict):
    """The stream ended at the client's request; the socket closes with 1000 next."""

    type: Literal["end"]
    stream: str
    rows: int
    processed: int
    carried: int


# --- action events (service/events/; docs/events.md) -----------------------------------


class Event(TypedDict):
    """An action `started` or `ended` on a stream, by the segment rule (runtime/segments.py;
    the segments `/classify` returns for the same rows). Published to every event sink and
    `GET /v1/events`; at least once, and every copy of one event carries the same `id`."""

    type: Literal["event"]
    event: Literal["started", "ended"]
    id: str  # "{segment}:{event}": the same for every copy (retries, resumes, replicas)
    segment: str  # "{stream key}:{epoch}:{start_row}": the same for started and ended
    stream: str  # the stream id the client chose
    tenant: str | None  # the API key's tenant (a digest); null when auth is off
    label: str
    index: int  # class index
    start: float  # seconds from the stream's first row: start_row / fps
    end: float  # end_row / fps; for `started`, the extent seen so far
    start_row: int  # first row of the segment
    end_row: int  # one past its last row
    frames: int  # end_row - start_row
    peak: float  # the action's highest probability over the segment's rows
    mean: float  # its mean probability over them
    reason: NotRequired[Literal["gap", "next", "end", "expired"]]  # `ended`: why
    model: ModelRef
    at: float  # Unix time the service decided it (its clock)


ServerMessage = Ready | Label | NoLabel | Error | Dropped | End
ClientMessage = FrameIn | FeaturesIn | EndIn

CLIENT: tuple[type, ...] = (FrameIn, FeaturesIn, EndIn)
SERVER: tuple[type, ...] = (Ready, Label, NoLabel, Error, Dropped, End)
EVENTS: tuple[type, ...] = (Event,)
PARTS: tuple[type, ...] = (Now, PoseWire, Skeleton)  # fields of the messages above


def brief(label: Label) -> Brief:
    return {
        "seq": label["seq"],
        "row": label["row"],
        "t": label["t"],
        "label": label["label"],
        "index": label["index"],
        "score": label["score"],
    }


def reference() -> str:
    """docs/wire.md: every message with its fields, from the types above."""
    from pydantic import TypeAdapter

    lines = [
        "# The stream socket's messages",
        "",
        "<!-- written by `python -m service.wire > docs/wire.md` from service/wire.py; "
        "tests/service/test_wire.py keeps it current -->",
        "",
        "`WS /v1/streams/{stream_id}`; query `delivery=live|lossless`, `top_k=N`, `carry=0`, "
        "`pose=1` (labels carry the joints and box the pose encoder saw), `token=KEY`. "
        "Close codes: 1000 done, 1008 auth or policy, 1009 message too big, "
        "1011 internal, 1013 overloaded, 1001/1012 server going away (reconnect).",
    ]
    sections = (
        ("Client → server", CLIENT, ""),
        ("Server → client", SERVER, ""),
        ("Parts of messages", PARTS, ""),
        (
            "Action events",
            EVENTS,
            "Not on the stream socket: sent to the event sinks (`GAD_EVENT_SINKS`: Redis "
            "Streams, MQTT, webhooks) and `GET /v1/events` (Server-Sent Events). The rule, "
            "the sinks and the delivery guarantee: [events.md](events.md).",
        ),
    )
    for title, kinds, intro in sections:
        lines += ["", f"## {title}"] + (["", intro] if intro else [])
        for kind in kinds:
            schema = TypeAdapter(kind).json_schema()
            required = set(schema.get("required", ()))
            lines += ["", f"### {kind.__name__}", "", inspect.cleandoc(kind.__doc__ or ""), ""]
            lines += ["| field | type | required |", "|---|---|---|"]
            for name, spec in schema["properties"].items():
                lines.append(f"| `{name}` | {_type(spec)} | {'yes' if name in required else ''} |")
    return "\n".join(lines) + "\n"


def _type(spec: dict[str, Any]) -> str:
    if "const" in spec:
        return f"`{json.dumps(spec['const'])}`"
    if "enum" in spec:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in spec["enum"])
    if "anyOf" in spec:
        return " \\| ".join(_type(s) for s in spec["anyOf"])
    if "$ref" in spec:
        return str(spec["$ref"]).rsplit("/", 1)[-1]
    kind = spec.get("type", "any")
    if kind == "array":
        items = spec.get("prefixItems")
        if items:
            return "[" + ", ".join(_type(s) for s in items) + "]"
        return f"list of {_type(spec.get('items', {}))}"
    return str(kind)


if __name__ == "__main__":
    sys.stdout.write(reference())
