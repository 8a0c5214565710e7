"""The gateway's configuration: one YAML file, checked before anything starts.

    service: ws://127.0.0.1:8000        # the service; each camera streams to /v1/streams/ID
    token_env: GAD_TOKEN                # the API key: an environment variable (or token:)
    listen: 127.0.0.1:9108              # /metrics and /healthz
    defaults:                           # any camera field below, for every camera
      jpeg_quality: 80
    cameras:
      - id: door                        # [A-Za-z0-9._-], unique: the metrics' camera label
        source: rtsp://user:pass@10.0.0.5/stream1   # file, rtsp(s), http(s), /dev/videoN, N
        stream: site1-door              # the service's stream id (default: id)
        fps: 4                          # default: the model's fps (from the service's ready)

Unknown keys, missing fields, a bad URL or source, a duplicate id and an unset token
variable are errors that name the camera and the field.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from runtime.errors import ConfigError
from runtime.sources import SourceError, SourceSpec, parse_source

NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


class BackoffConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    initial_s: float = Field(0.5, gt=0)
    max_s: float = Field(30.0, gt=0)
    stable_s: float = Field(10.0, ge=0)


class CameraFields(BaseModel):
    """What a camera may set, and `defaults:` for all of them."""

    model_config = ConfigDict(extra="forbid")
    service: str | None = None
    token: str | None = None
    token_env: str | None = None
    fps: float | None = Field(None, gt=0, le=120)
    jpeg_quality: int = Field(80, ge=10, le=100)
    max_side: int | None = Field(960, ge=64, le=8192)
    open_timeout_s: float = Field(10.0, gt=0, le=300)
    read_timeout_s: float = Field(5.0, gt=0, le=300)
    in_flight: int = Field(2, ge=1, le=32)
    answer_timeout_s: float = Field(15.0, gt=0)
    options: dict[str, str] = Field(default_factory=dict)  # FFmpeg options for this source
    backoff: BackoffConfig = Field(default_factory=BackoffConfig)


class CameraConfig(CameraFields):
    id: str
    source: str
    stream: str | None = None

    @field_validator("id", "stream")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not NAME.fullmatch(value):
            raise ValueError("must be 1-128 characters of A-Z a-z 0-9 . _ -")
        return value


class GatewayFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    service: str = "ws://127.0.0.1:8000"
    token: str | None = None
    token_env: str | None = None
    listen: str = "127.0.0.1:9108"
    defaults: dict[str, Any] = Field(default_factory=dict)
    cameras: list[dict[str, Any]] = Field(min_length=1)


class Camera(BaseModel):
    """One camera, resolved: its source parsed, its stream URL and key known."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)
    id: str
    source: SourceSpec
    url: str  # ws(s)://HOST/v1/streams/STREAM
    stream: str
    token: str | None
    fields: CameraFields


class GatewayConfig(BaseModel):
    model_config = ConfigDict(frozen=True)
    listen_host: str
    listen_port: int
    cameras: list[Camera]


def stream_url(service: str, stream: str) -> str:
    """ws(s)://HOST[:PORT][/PREFIX]/v1/streams/STREAM from a service base URL (http(s) is
    taken as ws(s))."""
    parts = urlsplit(service)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(
            f"service must be ws://, wss://, http:// or https:// HOST, got {service!r}"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/v1/streams"):
        path += "/v1/streams"
    return urlunsplit((scheme, parts.netloc, f"{path}/{stream}", parts.query, ""))


def _token(token: str | None, env: str | None, where: str) -> str | None:
    if token is not None:
        return token
    if env is None:
        return None
    value = os.environ.get(env)
    if not value:
        raise ConfigError(f"{where}: token_env {env} is not set (or empty)")
    return value


def _errors(exc: ValidationError, where: str) -> ConfigError:
    lines = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"]) or "(top level)"
        lines.append(f"{where}{field}: {error['msg']}")
    return ConfigError("; ".join(lines))


def parse_config(data: Any, *, origin: str = "config") -> GatewayConfig:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: expected a mapping with `cameras:`, got {type(data).__name__}"
        )
    try:
        top = GatewayFile.model_validate(data)
        CameraFields.model_validate(top.defaults)
    except ValidationError as exc:
        raise _errors(exc, f"{origin}: ") from None
    host, _, port = top.listen.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ConfigError(f"{origin}: listen must be HOST:PORT, got {top.listen!r}")
    cameras: list[Camera] = []
    seen: dict[str, set[str]] = {"id": set(), "stream": set()}
    for index, raw in enumerate(top.cameras):
        name = raw.get("id") if isinstance(raw, dict) else None
        where = f"{origin}: camera {name or index}: "
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}expected a mapping (id, source, ...)")
        try:
            camera = CameraConfig.model_validate(top.defaults | raw)
        except ValidationError as exc:
            raise _errors(exc, where) from None
        stream = camera.stream or camera.id
        for key, value in (("id", camera.id), ("stream", stream)):
            if value in seen[key]:
                raise ConfigError(f"{where}{key} {value!r} is used by another camera")
            seen[key].add(value)
        try:
            source = parse_source(camera.source)
            url = stream_url(camera.service or top.service, stream)
        except (SourceError, ValueError) as exc:
            raise ConfigError(f"{where}{exc}") from None
        token = (
            _token(camera.token, camera.token_env, where.rstrip(": "))
            if (camera.token or camera.token_env)
            else _token(top.token, top.token_env, origin)
        )
        fields = CameraFields.model_validate(camera.model_dump(exclude={"id", "source", "stream"}))
        cameras.append(
            Camera(id=camera.id, source=source, url=url, stream=stream, token=token, fields=fields)
        )
    return GatewayConfig(listen_host=host.strip("[]"), listen_port=int(port), cameras=cameras)


def load_config(path: Path | str) -> GatewayConfig:
    import yaml

    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read gateway config {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:  # one line: the problem and where
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path} is not valid YAML{where}: {problem}") from None
    return parse_config(data, origin=str(path))
