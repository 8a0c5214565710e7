"""The gateway's YAML file: what it resolves to, and a clear error for each mistake."""

import re
from pathlib import Path

import pytest

from runtime.errors import ConfigError
from service.gateway.config import load_config, parse_config, stream_url


def test_a_config_resolves_urls_keys_and_defaults(tmp_path: Path, monkeypatch) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    monkeypatch.setenv("SITE_KEY", "key-1")
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"""
service: http://gad:8000
token_env: SITE_KEY
listen: 0.0.0.0:9200
defaults: {{jpeg_quality: 70, backoff: {{max_s: 10}}}}
cameras:
  - id: door
    source: rtsp://admin:secret@10.0.0.5:554/stream1
    fps: 4
  - id: desk
    source: {video}
    stream: site1-desk
    service: wss://gad.example/prefix/
    token: other
    jpeg_quality: 95
    options: {{rtsp_transport: udp}}
"""
    )
    config = load_config(path)
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 9200)
    door, desk = config.cameras
    assert door.url == "ws://gad:8000/v1/streams/door" and door.token == "key-1"
    assert (
        door.source.kind == "rtsp"
        and door.source.describe() == "rtsp://admin:***@10.0.0.5:554/stream1"
    )
    assert (
        door.fields.fps == 4 and door.fields.jpeg_quality == 70 and door.fields.backoff.max_s == 10
    )
    assert desk.url == "wss://gad.example/prefix/v1/streams/site1-desk" and desk.token == "other"
    assert desk.source.kind == "file" and desk.fields.jpeg_quality == 95
    assert desk.fields.options == {"rtsp_transport": "udp"} and desk.fields.fps is None


def test_stream_url() -> None:
    assert stream_url("ws://h:1", "a") == "ws://h:1/v1/streams/a"
    assert stream_url("https://h/v1/streams/", "a") == "wss://h/v1/streams/a"


A = "{id: a, source: rtsp://h/x"  # the start of a camera entry
ONE = f"cameras: [{A}}}]"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cameras: [", "is not valid YAML"),
        ("- a\n- b", "expected a mapping with `cameras:`"),
        ("cameras: []", "cameras: List should have at least 1 item"),
        ("cameras: [{id: a}]", "camera a: source: Field required"),
        (f"cameras: [{A}, fsp: 4}}]", "camera a: fsp: Extra inputs are not permitted"),
        ("cameras: [{id: 'a b', source: rtsp://h/x}]", "camera a b: id: Value error, must be"),
        (f"cameras: [{A}, jpeg_quality: 101}}]", "jpeg_quality: Input should be less"),
        ("cameras: [{id: a, source: 'ftp://h/x'}]", "unsupported source scheme 'ftp'"),
        ("cameras: [{id: a, source: rtsp:///x}]", "has no host"),
        ("cameras: [{id: a, source: /no/such.mp4}]", "source file /no/such.mp4 not found"),
        ("cameras: [{id: a, source: /dev/video97}]", "no video device /dev/video97"),
        ("cameras: [{id: a, source: '7'}]", "no video device /dev/video7"),
        (f"cameras: [{A}}}, {A}}}]", "id 'a' is used by another"),
        (f"cameras: [{A}, stream: s}}, {{id: b, source: x://h, stream: s}}]",
         "camera b: stream 's' is used by another"),
        (f"service: ftp://h\n{ONE}", "service must be ws://"),
        (f"listen: nowhere\n{ONE}", "listen must be HOST:PORT"),
        (f"token_env: GAD_GATEWAY_NO_SUCH_VAR\n{ONE}", "token_env GAD_GATEWAY_NO_SUCH_VAR is not"),
        (f"defaults: {{fps: -1}}\n{ONE}", "fps: Input should be greater than 0"),
    ],
)  # fmt: skip
def test_each_mistake_gets_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "g.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read gateway config .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_parse_config_takes_a_mapping() -> None:
    config = parse_config({"cameras": [{"id": "x", "source": "rtsp://h/s"}]})
    assert config.cameras[0].url == "ws://127.0.0.1:8000/v1/streams/x"
