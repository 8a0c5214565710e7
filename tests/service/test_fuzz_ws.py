"""Hostile input on `WS /v1/streams/{id}`: Hypothesis-generated messages against the real
app (starlette's TestClient; the tiny package for feature frames, the demo model for
images).

Every property checks, per generated case, on a fresh stream:
  * each hostile message is answered by one `error`, `label` or `dropped` message, or the
    stream closes with a documented code — 1009 for a message over the limit, 1008 for an
    id, key or policy refusal; 1011 (internal error) is a failure: input must never crash
    the service;
  * the stream survives: a valid frame sent next gets a label (after a 1009 close, on a
    reconnect to the same id); when nothing hostile was taken, that frame is row 0 —
    a refused message changes nothing;
  * a concurrent stream (the witness, fed one row per case while the hostile messages are
    processed) is unaffected: its labels equal the offline labels, score for score.

Cases are counted; the last test prints one summary line. The default run is small and
derandomized; a bigger random run (failures are kept in .hypothesis/ and replayed first):

    GAD_FUZZ_EXAMPLES=2000 .venv/bin/pytest -q -s tests/service/test_fuzz_ws.py
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from starlette.websockets import WebSocketDisconnect

from service.client import encode_frame
from tests.model.helpers import FEATURE_DIM
from tests.service.fuzzing import (
    JSON_TEXT,
    NUMBER_TEXT,
    Tally,
    b64,
    bomb_strategy,
    broken,
    deep_json,
    float_row,
    fuzz_settings,
    peak_memory,
    receive,
    zero_png,
)
from tests.service.streaming import client, features_message, offline_scores

FPS = 4.0
DOCUMENTED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")  # README, service/api/ws.py
KEYS = ("key-a", "key-b")
MEMORY_BUDGET_MIB = 256  # peak RSS growth allowed for one case (a few frames of 4096²)

TALLY = Tally("fuzz ws")
_ids = itertools.count()

Message = tuple[str, Any]  # ("text", str) or ("bytes", bytes)


# --- apps: a hostile stream per case, a witness stream beside them ----------------------


class Witness:
    """A well-behaved stream that runs beside the hostile ones: one row per case."""

    def __init__(self, ws, dim: int) -> None:
        self.ws = ws
        self.dim = dim
        self.rows: list[np.ndarray] = []
        self.replies: list[dict] = []

    def send(self) -> None:
        i = len(self.rows)
        row = np.random.default_rng(i).normal(size=self.dim).astype(np.float32)
        self.rows.append(row)
        self.ws.send_json(features_message(row, seq=i, ts=i / FPS))

    def receive(self) -> None:
        reply = _json(receive(self.ws))
        assert reply["type"] == "label" and reply["row"] == len(self.replies), reply
        self.replies.append(reply)

    def check(self, package: Path) -> int:
        """Its labels equal the offline labels of the same rows; the number checked."""
        if not self.rows:
            return 0
        expected = offline_scores(package, np.stack(self.rows))
        assert [r["index"] for r in self.replies] == expected.argmax(1).tolist()
        np.testing.assert_allclose([r["score"] for r in self.replies], expected.max(1), atol=1e-5)
        return len(self.rows)


@dataclass(repr=False)  # Hypothesis prints the arguments of a failing case: keep it short
class App:
    http: TestClient
    package: Path
    witness: Witness
    valid_strict: Message  # seq 0, ts 0: must become row 0 of a fresh stream
    valid_loose: Message  # no seq, no ts: must get a label whatever came before
    max_message: int
    max_frame: int

    def oversize(self, message: Message) -> bool:
        kind, payload = message
        # A frame over max_frame is refused as one frame (binary or base64); only a
        # message over max_message closes the socket.
        if kind == "bytes":
            return len(payload) > self.max_message
        return len(payload.encode()) > self.max_message


@pytest.fixture(scope="module")
def features_app(tiny_package) -> Iterator[App]:
    package = tiny_package[1]
    limits = {"max_message_bytes": 1 << 20, "max_frame_bytes": 64 << 10}
    with (
        client(package, max_streams=4096, **limits) as http,
        http.websocket_connect("/v1/streams/witness") as ws,
    ):
        assert _json(receive(ws))["type"] == "ready"
        yield App(
            http,
            package,
            Witness(ws, FEATURE_DIM),
            ("text", json.dumps(features_message(ROW, seq=0, ts=0.0))),
            ("text", json.dumps(features_message(ROW))),
            limits["max_message_bytes"],
            limits["max_frame_bytes"],
        )


@pytest.fixture(scope="module")
def image_app(demo_model: Path) -> Iterator[App]:
    from gad.demo import package_dir

    package = package_dir(demo_model)
    limits = {"max_message_bytes": 8 << 20, "max_frame_bytes": 4 << 20}
    with (
        client(package, max_streams=4096, **limits) as http,
        http.websocket_connect("/v1/streams/witness") as ws,
    ):
        ready = _json(receive(ws))
        assert ready["accepts"] == ["features", "image"]
        frame = {"type": "frame", "seq": 0, "ts": 0.0, "image": b64(JPEG)}
        yield App(
            http,
            package,
            Witness(ws, http.app.state.served.package.feature_dim),
            ("text", json.dumps(frame)),
            ("bytes", JPEG),
            limits["max_message_bytes"],
            limits["max_frame_bytes"],
        )


@pytest.fixture(scope="module")
def keyed_app(tiny_package) -> Iterator[TestClient]:
    with client(tiny_package[1], max_streams=4096, api_keys=",".join(KEYS)) as http:
        yield http


def _json(message: dict[str, Any]) -> dict[str, Any]:
    assert message["type"] == "websocket.send", message
    return json.loads(message["text"])


def _send(ws, message: Message) -> None:
    kind, payload = message
    if kind == "bytes":
        ws.send_bytes(payload)
    else:
        ws.send_text(payload)


def run_case(app: App, prop: str, messages: list[Message]) -> None:
    """Send `messages` on a fresh stream; check the replies, survival and the witness."""
    stream = f"fuzz-{next(_ids)}"
    closed: dict[str, Any] | None = None
    with app.http.websocket_connect(f"/v1/streams/{stream}") as ws:
        assert _json(receive(ws))["type"] == "ready"
        for message in messages:
            _send(ws, message)
        app.witness.send()  # processed while the hostile messages are
        replies = []
        for _ in messages:
            reply = receive(ws)
            if reply["type"] == "websocket.close":
                closed = reply
                break
            replies.append(_json(reply))
            assert replies[-1]["type"] in ("error", "label", "dropped"), replies[-1]
        app.witness.receive()
        if closed is not None:
            assert closed["code"] == 1009 and any(map(app.oversize, messages)), closed
        else:
            taken = any(r["type"] == "label" for r in replies)
            _survives(ws, app, strict=not taken, context=replies)
    if closed is not None:  # the stream itself survives: reconnect and go on
        with app.http.websocket_connect(f"/v1/streams/{stream}") as ws:
            assert _json(receive(ws))["type"] == "ready"
            _survives(ws, app, strict=False)
    kinds = sorted({r["type"] for r in replies})
    TALLY.count(prop, f"close {closed['code']}" if closed else "+".join(kinds))


def run_bounded(app: App, prop: str, messages: list[Message]) -> None:
    """run_case, and no case may raise the process' peak memory by more than the budget."""
    with peak_memory() as growth:
        run_case(app, prop, messages)
    if growth:
        TALLY.peak(prop, growth[0])
        assert growth[0] < MEMORY_BUDGET_MIB, f"peak RSS rose {growth[0]} MiB on {messages!r:.300}"


def _survives(ws, app: App, *, strict: bool, context: object = None) -> None:
    _send(ws, app.valid_strict if strict else app.valid_loose)
    label = _json(receive(ws))
    assert label["type"] == "label", (label, context)
    if strict:  # nothing hostile was taken: the stream is as new
        assert label["row"] == 0 and label["seq"] == 0 and not label["carried"], label
    ws.send_json({"type": "end"})
    assert _json(receive(ws))["type"] == "end"


# --- feature frames (the tiny package) --------------------------------------------------

ROW = np.random.default_rng(0).normal(size=FEATURE_DIM).astype(np.float32)
VALID_TEXT = json.dumps(features_message(ROW, seq=0, ts=0.0))
TYPES = st.one_of(
    st.just('"features"'),
    st.sampled_from(['"frame"', '"FEATURES"', '"label"', '"ready"', '"features "', '"end "']),
    JSON_TEXT,
)
SEQS = st.one_of(st.integers(0, 50).map(str), NUMBER_TEXT, JSON_TEXT)
TIMES = st.one_of(st.floats(0, 100).map(json.dumps), NUMBER_TEXT, JSON_TEXT)


@st.composite
def feature_data(draw: st.DrawFn) -> str:
    """The JSON text of a `data` field: right, wrong length or dtype, NaN/inf, bad base64."""
    how = draw(st.integers(0, 7))
    if how == 0:
        return json.dumps(float_row(ROW))
    if how == 1:
        size = draw(st.integers(0, 3 * FEATURE_DIM).filter(lambda n: n != FEATURE_DIM))
        return json.dumps(float_row(np.ones(size)))
    if how == 2:
        dtype = draw(st.sampled_from(["<f8", "<f2", ">f4", "<i4", "<i8", "u1", "<c8"]))
        return json.dumps(float_row(ROW, dtype))
    if how == 3:
        row = ROW.copy()
        bad = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        row[draw(st.integers(0, FEATURE_DIM - 1))] = bad
        return json.dumps(float_row(row))
    if how == 4:
        text = float_row(ROW)
        at = draw(st.integers(0, len(text) - 1))
        bad = draw(st.sampled_from(["", "=", "-", "_", " ", "\n", "é", "\0", "==", "A"]))
        return json.dumps(text[:at] + bad + text[at + 1 :])
    if how == 5:
        return json.dumps(draw(st.text(max_size=100)))
    if how == 6:
        values = draw(st.lists(st.floats(width=32), min_size=FEATURE_DIM, max_size=FEATURE_DIM))
        return json.dumps(float_row(np.array(values, np.float32)))
    return draw(JSON_TEXT)


@st.composite
def feature_message(draw: st.DrawFn) -> str:
    """A features/frame message with any field missing, wrong or hostile."""
    fields = {"type": draw(TYPES), "seq": draw(SEQS), "ts": draw(TIMES)}
    fields["data"] = draw(feature_data())
    if draw(st.booleans()):
        fields["image"] = json.dumps(b64(draw(st.binary(max_size=64))))
    keep = draw(st.sets(st.sampled_from(sorted(fields)))) | {"type"}
    return "{" + ",".join(f'"{k}":{v}' for k, v in fields.items() if k in keep) + "}"


FEATURE_TEXT = st.one_of(
    feature_message(),
    st.text(max_size=300),  # malformed JSON
    st.integers(0, len(VALID_TEXT) - 1).map(lambda k: VALID_TEXT[:k]),  # truncated
    deep_json(),  # up to 100k levels
    JSON_TEXT,  # any JSON: arrays, numbers, strings, objects without a type
    st.just("x" * ((1 << 20) + 1)),  # over max_message_bytes: 1009
)
FEATURE_BYTES = st.one_of(
    st.binary(max_size=300),
    st.just(VALID_TEXT.encode()),  # binary where text is expected
    feature_message().map(str.encode),
    st.just(b"\0" * ((64 << 10) + 1)),  # over max_frame_bytes: refused, the stream goes on
)
FEATURE_MESSAGES = st.lists(
    st.one_of(FEATURE_TEXT.map(lambda t: ("text", t)), FEATURE_BYTES.map(lambda b: ("bytes", b))),
    min_size=1,
    max_size=3,
)


@fuzz_settings(default=150)
@given(messages=FEATURE_MESSAGES)
def test_feature_stream_survives_hostile_messages(features_app: App, messages) -> None:
    run_bounded(features_app, "feature messages", messages)


@fuzz_settings(default=40)
@given(frames=st.lists(st.tuples(st.integers(0, 15), st.floats(0, 8)), min_size=1, max_size=10))
def test_out_of_order_and_repeated_seqs(features_app: App, frames) -> None:
    """A seq at or below one already processed is refused; any other is answered with a
    label (carried over when its timestamp lands in a filled slot)."""
    stream = f"order-{next(_ids)}"
    with features_app.http.websocket_connect(f"/v1/streams/{stream}") as ws:
        assert _json(receive(ws))["type"] == "ready"
        next_seq, rows = 0, []
        for seq, ts in frames:
            ws.send_json(features_message(ROW, seq=seq, ts=ts))
            reply = _json(receive(ws))
            if seq < next_seq:
                assert reply["type"] == "error" and reply["code"] == "seq", reply
            else:
                assert reply["type"] == "label" and reply["seq"] == seq, reply
                next_seq = seq + 1
                rows.append(reply["row"])
        assert rows == sorted(rows)
        _survives(ws, features_app, strict=False)
    TALLY.count("seq order", "ok")


# --- stream ids, query parameters and keys ----------------------------------------------

ID_TRICKS = [
    "..",
    ".",
    "%2F",
    "a%2Fb",
    "..%2F..%2Fetc",
    "%2e%2e",
    "cam/../other",
    "cam\n",  # "$" in the id regex matches before a final newline: was accepted
    "cam\r\n",
    "cam\x00",
    "\x00",
    "été",
    "ｃａｍ",
    "cam\u202e",
    "cam ",
    " cam",
    "-cam",
    "_",
    "a.b",
    "a..b",
    "a" * 128,
    "a" * 129,
    "a" * 10_000,
]
IDS = st.one_of(
    st.sampled_from(ID_TRICKS),
    st.text(max_size=200),
    st.from_regex(DOCUMENTED_ID, fullmatch=True),
)
QUERY = st.dictionaries(
    st.sampled_from(["top_k", "carry", "token", "delivery", "x"]),
    st.one_of(
        st.text(max_size=20),
        NUMBER_TEXT.map(lambda n: n[:50]),
        st.sampled_from(["live", "lossless", "Live", ""]),
    ),
    max_size=3,
)
DELIVERIES = ("live", "lossless")


@fuzz_settings(default=60)
@given(stream_id=IDS, encode=st.booleans(), query=QUERY)  # raw: as typed, where a URL allows
def test_stream_ids_and_query(features_app: App, stream_id: str, encode: bool, query) -> None:
    """An id is accepted exactly when it is 1-128 of [A-Za-z0-9._-] starting with a letter or
    digit (else 1008); a path that is not one segment is not routed. Query parameters
    never break a stream."""
    check_stream_id(features_app, stream_id, encode, query)


@pytest.mark.parametrize("encode", [True, False])
@pytest.mark.parametrize("stream_id", ID_TRICKS)
def test_stream_id_tricks(features_app: App, stream_id: str, encode: bool) -> None:
    check_stream_id(features_app, stream_id, encode, {})


def check_stream_id(app: App, stream_id: str, encode: bool, query: dict) -> None:
    raw = stream_id.isascii() and stream_id.isprintable() and not {"?", "#"} & set(stream_id)
    path = stream_id if raw and not encode else quote(stream_id, safe="")
    url = f"/v1/streams/{path}" + (f"?{urlencode(query)}" if query else "")
    try:
        session = app.http.websocket_connect(url)
        ws = session.__enter__()
    except WebSocketDisconnect:
        assert not DOCUMENTED_ID.fullmatch(stream_id), stream_id  # not routed
        TALLY.count("stream ids", "not routed")
        return
    try:
        first = receive(ws)
        if first["type"] == "websocket.close":
            assert first["code"] == 1008, first
            if "unknown delivery" in first["reason"]:  # the id passed: only the mode is wrong
                assert query.get("delivery") not in DELIVERIES, (query, first)
                TALLY.count("stream ids", "close 1008 (delivery)")
                return
            assert "stream id" in first["reason"], first
            assert not DOCUMENTED_ID.fullmatch(stream_id), stream_id
            TALLY.count("stream ids", "close 1008")
            return
        ready = _json(first)
        assert ready["delivery"] == query.get("delivery", "live"), (query, ready)
        assert DOCUMENTED_ID.fullmatch(ready["stream"]), ready["stream"]
        if DOCUMENTED_ID.fullmatch(stream_id):
            assert ready["stream"] == stream_id
        _survives(ws, app, strict=not ready["resumed"])
        TALLY.count("stream ids", "ready")
    finally:
        session.__exit__(None, None, None)


CREDENTIAL = st.one_of(
    st.sampled_from(KEYS),
    st.sampled_from(["", " ", "key-a ", "KEY-A", "key-", "key-a,key-b", "key-c"]),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
)


@fuzz_settings(default=40)
@given(
    header=st.none() | st.tuples(st.sampled_from(["Bearer ", "bearer ", "Basic ", ""]), CREDENTIAL),
    token=st.none() | CREDENTIAL,
    protocols=st.lists(
        st.one_of(
            CREDENTIAL.map(lambda k: "gad.key." + k), st.sampled_from(["gad.v1", "chat", "gad.key"])
        ).filter(lambda p: "," not in p and p.strip() == p and p),
        max_size=3,
    ),
)
def test_keys_from_any_source(keyed_app: TestClient, header, token, protocols) -> None:
    """With keys configured a stream opens only for a valid key; anything else is 1008."""
    headers = {} if header is None else {"Authorization": header[0] + header[1]}
    url = "/v1/streams/keyed" + (f"?{urlencode({'token': token})}" if token is not None else "")
    offered = [
        header[1].strip() if header and header[0].lower() == "bearer " else None,
        token,
        *(p.removeprefix("gad.key.") for p in protocols if p.startswith("gad.key.")),
    ]
    offered = [k for k in offered if k]
    with keyed_app.websocket_connect(url, headers=headers, subprotocols=protocols) as ws:
        first = receive(ws)
        if first["type"] == "websocket.close":
            assert first["code"] == 1008 and "API key" in first["reason"], first
            assert not (offered and all(k in KEYS for k in offered)), offered
            assert all(k not in first["reason"] for k in KEYS)  # never echoed
            TALLY.count("keys", "close 1008")
            return
        assert _json(first)["type"] == "ready"
        assert any(k in KEYS for k in offered), offered
        TALLY.count("keys", "ready")


# --- images (the demo model) -------------------------------------------------------------


def _picture() -> np.ndarray:
    """A synthetic 320 × 240 RGB frame with edges and gradients (JPEG-realistic)."""
    y, x = np.mgrid[0:240, 0:320]
    rgb = np.stack([x * 255 // 320, y * 255 // 240, (x ^ y) & 255], axis=-1).astype(np.uint8)
    rgb[60:180, 100:220] = (200, 40, 40)
    return rgb


PICTURE = _picture()
JPEG = encode_frame(PICTURE, "jpeg", 85)
PNG = encode_frame(PICTURE, "png", 0)


def _pillow(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(PICTURE[:48, :64]).save(out, fmt)
    return out.getvalue()


OTHER_FORMATS = [_pillow(f) for f in ("GIF", "TIFF", "BMP", "WEBP", "ICO", "PPM", "TGA")]
IMAGES = st.one_of(
    broken(JPEG),
    broken(PNG),
    bomb_strategy(),
    st.binary(max_size=512),
    st.sampled_from(OTHER_FORMATS),  # refused formats, and BMP/WebP (accepted)
    st.sampled_from([JPEG, PNG]),
)


@st.composite
def image_message(draw: st.DrawFn) -> Message:
    image = draw(IMAGES)
    how = draw(st.sampled_from(["binary", "json", "json-bad-base64", "text"]))
    if how == "binary":
        return "bytes", image
    if how == "text":  # an image where text is expected
        return "text", image.decode("latin-1")
    encoded = b64(image)
    if how == "json-bad-base64" and encoded:
        at = draw(st.integers(0, len(encoded) - 1))
        encoded = encoded[:at] + draw(st.sampled_from(["*", "", "=", "\n"])) + encoded[at + 1 :]
    fields = {"type": '"frame"', "seq": draw(SEQS), "ts": draw(TIMES), "image": json.dumps(encoded)}
    keep = draw(st.sets(st.sampled_from(["seq", "ts"]))) | {"type", "image"}
    return "text", "{" + ",".join(f'"{k}":{v}' for k, v in fields.items() if k in keep) + "}"


@fuzz_settings(default=60)
@given(messages=st.lists(image_message(), min_size=1, max_size=2))
def test_image_stream_survives_hostile_frames(image_app: App, messages) -> None:
    run_bounded(image_app, "image frames", messages)


# --- regressions: each bug the fuzzing found, as the example that found it ----------------

REGRESSIONS = {
    # json.loads raises a plain ValueError (not JSONDecodeError) past 4300 digits: was 1011.
    "5000-digit number": [("text", '{"type":"features","data":[1' + "0" * 5000 + "]}")],
    # float(ts) overflowed: was 1011.
    "4301-digit ts": [("text", '{"type":"features","ts":' + "9" * 4301 + "}")],
    # a seq of 4300 digits was taken; next_seq (4301 digits) broke the meta JSON: was 1011.
    "4300-digit seq": [
        ("text", json.dumps(features_message(ROW, ts=0.0))[:-1] + ',"seq":' + "9" * 4300 + "}")
    ],
    # the sampler's slot arithmetic overflowed on the next frame: was 1011.
    "ts near float max, then 0": [
        ("text", json.dumps(features_message(ROW, seq=0, ts=1.7e308))),
        ("text", json.dumps(features_message(ROW, seq=1, ts=0.0))),
    ],
    # a refused frame set next_seq to its own seq: seqs below it were refused as replays.
    "refused frame with seq ahead": [("text", '{"type":"frame","seq":7,"image":"AAAA"}')],
}


@pytest.mark.parametrize("messages", REGRESSIONS.values(), ids=REGRESSIONS.keys())
def test_regressions_features(features_app: App, messages) -> None:
    run_bounded(features_app, "regressions", messages)


def test_regression_a_79_byte_png_of_1_x_2000_pixels(image_app: App) -> None:
    """Resized before its centre crop, it became 256 × 512,000 pixels (375 MiB)."""
    sliver = zero_png(1, 2000)
    assert len(sliver) < 100
    run_bounded(image_app, "regressions", [("bytes", sliver)])


def test_regression_a_frame_message_refused_does_not_move_seq(image_app: App) -> None:
    run_bounded(image_app, "regressions", [("text", '{"type":"frame","seq":1,"image":""}')])


def _phone_jpegs() -> dict[str, bytes]:
    picture = Image.fromarray(PICTURE)
    turned, mpo = io.BytesIO(), io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° to display
    picture.save(turned, "JPEG", exif=exif.tobytes())
    picture.save(mpo, "MPO", save_all=True, append_images=[picture])
    return {"exif-rotated": turned.getvalue(), "mpo": mpo.getvalue()}


@pytest.mark.parametrize("name", ["exif-rotated", "mpo"])
def test_phone_camera_jpegs_are_frames(image_app: App, name: str) -> None:
    """Found beside the fuzzing: a portrait JPEG (OpenCV turns it, so its shape differed
    from the header's) was refused as corrupt, and an MPO (a multi-picture JPEG) as an
    unknown format."""
    with image_app.http.websocket_connect(f"/v1/streams/phone-{name}") as ws:
        assert _json(receive(ws))["type"] == "ready"
        ws.send_bytes(_phone_jpegs()[name])
        reply = _json(receive(ws))
    assert reply["type"] == "label", reply
    TALLY.count("regressions", "label")


def test_regression_an_empty_key_subprotocol_after_a_valid_one(keyed_app: TestClient) -> None:
    """The last gad.key.* subprotocol won, so a trailing empty one refused a valid key."""
    protocols = ["gad.key.key-a", "gad.key."]
    with keyed_app.websocket_connect("/v1/streams/keyed", subprotocols=protocols) as ws:
        assert _json(receive(ws))["type"] == "ready"
    TALLY.count("regressions", "ready")


# --- the concurrent streams, and the count ----------------------------------------------


# Hostile cases the witness test runs itself, a witness row beside each: run alone, it still
# checks rows of its own, not only those other tests left.
WITNESS_CASES: dict[str, list[list[Message]]] = {
    "features": [
        [("text", VALID_TEXT[:20])],  # truncated
        [("bytes", b"\x00junk")],  # binary where text is expected
        [("text", '{"type":"features","seq":0,"data":"%%%"}')],  # bad base64
        [("text", VALID_TEXT)],  # valid: taken
        [("text", json.dumps(features_message(ROW * np.nan, seq=0, ts=0.0)))],  # NaN row
    ],
    "image": [
        [("bytes", JPEG[: len(JPEG) // 2])],  # truncated
        [("bytes", zero_png(1, 2000))],
        [("bytes", JPEG)],  # valid: taken
    ],
}


def test_witness_streams_match_offline_and_summary(
    features_app: App, image_app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    apps = {"features": features_app, "image": image_app}
    for name, cases in WITNESS_CASES.items():
        for messages in cases:
            run_case(apps[name], "witness", messages)
    checked = features_app.witness.check(features_app.package)
    checked += image_app.witness.check(image_app.package)
    assert checked >= sum(map(len, WITNESS_CASES.values())), checked
    with capsys.disabled():
        print(f"\n{TALLY.summary()}; witness streams: {checked} labels == offline")
