"""The service's one settings object: environment variables `GAD_*`, built once at start.

    GAD_MODEL=models/demo            a package version folder, or a model folder (newest)
    GAD_REDIS_URL=redis://redis:6379/0   shared stream cache (unset: in-process)
    GAD_REDIS_URL=redis+cluster://redis-0:6379,redis-1:6379   ... on a Redis Cluster
    GAD_API_KEYS='["key-1","key-2"]'     or key-1,key-2; unset: no auth (logged loudly)
    GAD_DATA_DIR=/var/lib/gad         the users' examples (service/examples/); unset: the
                                     user data dir, ~/.local/share/gad-stream/examples
    GAD_EVENT_SINKS=redis://redis:6379/0,mqtt://mosquitto:1883/gad,https://hooks.example/gad
                                     where action events go (docs/events.md); SSE always

`gad serve` flags override the environment; nothing else reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from runtime.cache_files import default_data_dir
from runtime.errors import ConfigError
from runtime.segments import DISPLAY_RULE, SegmentRule
from service.cache.urls import cache_backend, redact_url

MiB = 1 << 20
EVENT_SCHEMES = ("redis", "rediss", "unix", "mqtt", "mqtts", "http", "https")


class Settings(BaseSettings):
    # Errors never echo the input: GAD_REDIS_URL and GAD_API_KEYS may hold secrets.
    model_config = SettingsConfigDict(
        env_prefix="GAD_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    # --- model and engine
    # Which model when none is named (the pose demo) is `gad serve`'s decision, not the service's.
    model: Path | None = Field(None, description="model package (gad serve: default the demo)")
    backend: Literal["onnx", "torch"] = Field(
        "onnx", description="head.onnx in onnxruntime, or a checkpoint in PyTorch (GPU hosts)"
    )
    checkpoint: Path | None = Field(None, description="checkpoint for backend=torch")
    torch_dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"
    providers: Annotated[tuple[str, ...], NoDecode] = ("tensorrt", "cuda", "cpu")
    threads: int | None = Field(None, ge=1, description="onnxruntime intra-op threads")
    max_batch: int = Field(32, ge=1, description="windows per engine batch")
    max_wait_ms: float = Field(2.0, ge=0, description="how long a batch waits to fill")
    top_k: int = Field(3, ge=1, le=50)

    # --- network
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()

    # --- streams and cache
    # redis:// rediss:// unix:// (one Redis) or redis+cluster:// (a cluster's seed nodes); may
    # hold a password. Checked at start (service/cache/urls.py), connected on first use.
    redis_url: str | None = Field(None, repr=False)
    redis_prefix: str = Field("gad", min_length=1, description="key namespace in Redis")
    cache_dtype: Literal["float32", "float16"] = "float32"
    stream_ttl_s: float = Field(300.0, gt=0, description="idle time before a stream is freed")
    cache_timeout_s: float = Field(1.0, gt=0)
    max_streams: int = Field(64, ge=1, description="concurrent streams per process")
    # A streaming package (step.onnx): feature rows kept per stream to rebuild its K/V rings
    # on another replica. None = the package's reach (layers x (W-1) + 1): exact resumes.
    stream_replay_rows: int | None = Field(None, ge=1, description="rows a resume replays")
    queue_depth: int = Field(8, ge=1, description="frames waiting per stream")
    drop_policy: Literal["drop-oldest", "drop-newest"] = "drop-oldest"
    send_queue: int = Field(64, ge=1, description="messages waiting for a slow reader")
    send_timeout_s: float = Field(
        10.0, gt=0, description="how long a full send queue may wait before the stream closes"
    )
    # uvicorn's WebSocket keepalive: a client whose pong is not back in time is closed (1011).
    # A lossless stream offered more than the server labels for longer than this sees its
    # pong queued behind unread frames: raise it for long catch-ups (docs: delivery modes).
    ws_ping_interval_s: float = Field(20.0, gt=0)
    ws_ping_timeout_s: float = Field(20.0, gt=0)

    # --- limits
    max_frame_bytes: int = Field(4 * MiB, ge=1024)
    max_frame_pixels: int = Field(4096 * 4096, ge=64 * 64)
    max_clip_bytes: int = Field(256 * MiB, ge=1024)
    max_clip_seconds: float = Field(1800.0, gt=0)
    max_message_bytes: int = Field(16 * MiB, ge=1024)
    max_classify: int = Field(2, ge=1, description="concurrent /classify requests")
    body_timeout_s: float = Field(
        30.0, gt=0, description="longest pause in a /classify upload before a 408"
    )

    # --- model versions (service/versions.py): a new version in the model folder is loaded
    # and switched to; 0 turns the watch off (POST /v1/models/reload still switches).
    model_watch_s: float = Field(
        5.0, ge=0, description="how often the model folder is checked for a new version"
    )

    # --- action events (docs/events.md): the segment rule's thresholds, also /classify's
    # segments and the label a stream shows (`now`); the defaults are DISPLAY_RULE's, chosen
    # on held-out and real footage (docs/pose.md). 0 / 1 / 0 makes every run of one label.
    event_min_score: float = Field(
        DISPLAY_RULE.min_score,
        ge=0,
        le=1,
        description="a frame counts for an action at this probability or more",
    )
    event_min_frames: int = Field(
        DISPLAY_RULE.min_frames, ge=1, description="frames an action must span to start"
    )
    event_max_gap: int = Field(
        DISPLAY_RULE.max_gap, ge=0, description="frames without the action a segment bridges"
    )
    # Where events go, several at once: redis:// rediss:// unix:// (Redis Streams), mqtt://
    # mqtts:// (MQTT, QoS 1), http:// https:// (webhooks). `GET /v1/events` (SSE) is always on.
    event_sinks: Annotated[tuple[str, ...], NoDecode] = Field((), repr=False)
    event_webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 key of webhooks' X-GAD-Signature"
    )
    event_buffer: int = Field(
        1000, ge=1, description="events waiting per sink; then the oldest drop"
    )
    event_timeout_s: float = Field(5.0, gt=0, description="one delivery attempt to a sink")
    event_retry_max_s: float = Field(10.0, gt=0, description="longest wait between retries")
    event_drain_s: float = Field(5.0, ge=0, description="shutdown: time to deliver what waits")

    # --- the users' examples (docs/teach.md): DATA_DIR/<tenant>/<model name>/, the standard
    # feature layout `gad train` reads. Not under the cache folder: a cache may be deleted at
    # will, examples are the users' work (the platform's user data dir, XDG_DATA_HOME).
    data_dir: Path = Field(
        default_factory=lambda: default_data_dir() / "examples",
        description="where the examples of users' actions are kept",
    )
    max_examples: int = Field(
        2000, ge=1, description="examples kept per tenant and model; then adding is refused"
    )
    # `POST /v1/train`'s budget (service/jobs.py → `gad teach train --steps --eval-videos`)
    teach_steps: int = Field(600, ge=1, description="fine-tuning batches of a training job")
    teach_eval_videos: int | None = Field(
        None, ge=1, description="held-out mocap videos the old classes are checked on (all)"
    )
    # Where a training job runs: None, here (a subprocess: needs the training install); a
    # Redis URL, a trainer elsewhere (`gad worker --queue URL`: service/train_queue.py).
    train_queue: str | None = Field(None, repr=False)
    train_queue_wait_s: float = Field(
        120.0, gt=0, description="how long a queued job waits for a trainer to take it"
    )

    # --- auth
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = ()
    auth_metrics: bool = False
    auth_health: bool = False

    # --- logs
    log_json: bool = True
    log_level: str = "INFO"

    @field_validator("providers", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        return _split(value)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        cache_backend(value)  # ConfigError (a ValueError) naming the URL with its password hidden
        return value

    @field_validator("train_queue")
    @classmethod
    def _check_train_queue(cls, value: str | None) -> str | None:
        if value is not None and cache_backend(value) != "redis":
            raise ConfigError(
                f"GAD_TRAIN_QUEUE {redact_url(value)!r}: use one Redis (redis://, rediss://, "
                "unix://), the one `gad worker --queue` reads"
            )
        return value

    @field_validator("event_sinks", mode="before")
    @classmethod
    def _split_sinks(cls, value: object) -> object:
        return _split(value)

    @field_validator("event_sinks")
    @classmethod
    def _check_sinks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for url in value:
            scheme = url.split("://", 1)[0].lower() if "://" in url else ""
            if scheme not in EVENT_SCHEMES:
                raise ConfigError(
                    f"event sink {redact_url(url)!r}: use redis://, rediss://, unix:// (Redis "
                    "Streams), mqtt://, mqtts:// (MQTT) or http://, https:// (webhook)"
                )
        return value

    @model_validator(mode="after")
    def _webhooks_are_signed(self) -> Settings:
        hooks = any(url.lower().startswith(("http://", "https://")) for url in self.event_sinks)
        if hooks and self.event_webhook_secret is None:
            raise ConfigError("a webhook event sink needs GAD_EVENT_WEBHOOK_SECRET (its HMAC key)")
        return self

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        keys = _split(value)
        if isinstance(keys, tuple) and any(not str(k).strip() for k in keys):
            raise ValueError("API keys must be non-empty")
        return keys

    @property
    def model_dir(self) -> Path:
        """The model package to serve; ConfigError when none is set."""
        if self.model is None:
            raise ConfigError(
                "no model package: set GAD_MODEL or pass --model DIR from `gad export` "
                "(`gad serve` alone serves the demo model)"
            )
        return self.model

    @property
    def segment_rule(self) -> SegmentRule:
        """The rule that makes events and /classify's segments (runtime/segments.py)."""
        return SegmentRule(self.event_min_score, self.event_min_frames, self.event_max_gap)

    @property
    def auth_enabled(self) -> bool:
        return bool(self.api_keys)


def _split(value: object) -> object:
    """'a,b' or '["a","b"]' (environment) or a list (code) → tuple."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return tuple(json.loads(text))
        return tuple(part.strip() for part in text.split(",") if part.strip())
    if isinstance(value, list):
        return tuple(value)
    return value
