"""Where action events go: one sink per URL of GAD_EVENT_SINKS (docs/events.md).

    redis://[user:pass@]host:6379/0?key=gad:events&maxlen=100000&dedup_s=86400
    rediss://...  unix:///run/redis.sock?db=0&...            Redis Streams: XADD, MAXLEN ~ cap
    mqtt://[user:pass@]host:1883/PREFIX?qos=1   mqtts://...    MQTT: PREFIX/TENANT/STREAM
    http(s)://host/path                                        webhook: POST JSON, signed

A sink's `send(events)` delivers a batch in order or raises: `SinkFailed` (try again later;
`delivered` says how many of the batch got through first) or `SinkRejected` (the receiver
refuses the event at `delivered` for good). The bus (service/events/bus.py) retries, buffers
and counts; a sink only talks to its server.

Redis is exactly-once per event id within `dedup_s` (a script adds the entry only if a
`KEY:seen:ID` marker was not set, in one step), so retries and resumes never add a second
entry. MQTT (QoS 1) and webhooks are at least once: a retry after a lost acknowledgement,
or a resume (docs/events.md), sends the same event again with the same `id`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import ssl
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from runtime.errors import ConfigError
from service.cache.urls import redact_url
from service.wire import Event

REDIS_KEY = "gad:events"
REDIS_MAXLEN = 100_000
REDIS_DEDUP_S = 86_400
MQTT_PREFIX = "gad/events"
NO_TENANT = "-"  # the topic level of a stream without a tenant (auth off)
SIGNATURE_HEADER = "X-GAD-Signature"


class SinkFailed(Exception):
    """The sink is unreachable or failed: try again later."""

    def __init__(self, message: str, *, delivered: int = 0) -> None:
        super().__init__(message)
        self.delivered = delivered


class SinkRejected(Exception):
    """The receiver refused the batch's event at `delivered` for good (e.g. HTTP 400)."""

    def __init__(self, message: str, *, delivered: int = 0) -> None:
        super().__init__(message)
        self.delivered = delivered


class Sink(Protocol):
    name: str  # the metric label: redis, mqtt, webhook (with a number when several)
    batch: int  # events per send

    async def send(self, events: Sequence[Event]) -> None: ...

    async def close(self) -> None: ...


def body_of(event: Event) -> bytes:
    """An event's JSON as every sink sends it (compact; the bytes a webhook signs)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode()


def signature(secret: str, body: bytes) -> str:
    """The X-GAD-Signature value: `sha256=` + HMAC-SHA256(secret, body) in hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _options(url: str, names: Sequence[str]) -> tuple[str, dict[str, str]]:
    """`url` without the query options in `names`, and those options."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {k: v for k, v in query if k in names}
    rest = urlencode([(k, v) for k, v in query if k not in names])
    return urlunsplit(parts._replace(query=rest)), ours


def _int_option(options: dict[str, str], name: str, default: int, url: str) -> int:
    try:
        value = int(options.get(name, default))
    except ValueError:
        raise ConfigError(f"event sink {redact_url(url)!r}: {name} must be an integer") from None
    if value < 0:
        raise ConfigError(f"event sink {redact_url(url)!r}: {name} must be >= 0")
    return value


# Add the entry only if its id's marker is new (dedup_s 0: always); one step, so a retried
# batch whose reply was lost adds nothing twice.
XADD_ONCE = """
local ttl = tonumber(ARGV[2])
if ttl > 0 and not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ttl) then
  return 0
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[3], 'event', ARGV[4],
  'stream', ARGV[5], 'tenant', ARGV[6], 'label', ARGV[7], 'data', ARGV[8])
return 1
"""


class RedisSink:
    """Redis Streams: one XADD per event to one stream key, capped by `MAXLEN ~`."""

    batch = 64

    def __init__(self, url: str, *, timeout_s: float, name: str = "redis") -> None:
        import redis.asyncio as aioredis

        self.name = name
        self.url = url
        plain, options = _options(url, ("key", "maxlen", "dedup_s"))
        self.key = options.get("key") or REDIS_KEY
        self.maxlen = _int_option(options, "maxlen", REDIS_MAXLEN, url)
        self.dedup_s = _int_option(options, "dedup_s", REDIS_DEDUP_S, url)
        self.client = aioredis.Redis.from_url(
            plain, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        self.script = self.client.register_script(XADD_ONCE)

    async def send(self, events: Sequence[Event]) -> None:
        import redis

        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for event in events:
                    keys = [self.key, f"{self.key}:seen:{event['id']}"]
                    args: list[bytes | str | int] = [
                        self.maxlen,
                        self.dedup_s,
                        event["id"],
                        event["event"],
                        event["stream"],
                        event["tenant"] or "",
                        event["label"],
                        body_of(event),
                    ]
                    await self.script(keys=keys, args=args, client=pipe)
                await pipe.execute()
        except (redis.RedisError, OSError) as exc:
            raise SinkFailed(f"{redact_url(self.url)}: {exc}") from exc

    async def close(self) -> None:
        await self.client.aclose()


class MqttSink:
    """MQTT, QoS 1 (each publish waits for the broker's PUBACK): one topic per stream,
    `PREFIX/TENANT/STREAM` (TENANT `-` without auth). Reconnects on the next attempt."""

    batch = 16

    def __init__(self, url: str, *, timeout_s: float, name: str = "mqtt") -> None:
        parts = urlsplit(url)
        _, options = _options(url, ("qos", "client_id"))
        self.name = name
        self.url = url
        self.host = parts.hostname or "localhost"
        self.tls = parts.scheme.lower() == "mqtts"
        self.port = parts.port or (8883 if self.tls else 1883)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.prefix = parts.path.strip("/") or MQTT_PREFIX
        if any(c in self.prefix for c in "+#"):
            raise ConfigError(f"event sink {redact_url(url)!r}: no MQTT wildcards in the prefix")
        self.qos = _int_option(options, "qos", 1, url)
        if self.qos not in (1, 2):
            raise ConfigError(f"event sink {redact_url(url)!r}: qos must be 1 or 2")
        self.client_id = options.get("client_id") or None
        self.timeout_s = timeout_s
        self.client: Any = None  # aiomqtt.Client while connected

    def topic(self, event: Event) -> str:
        return f"{self.prefix}/{event['tenant'] or NO_TENANT}/{event['stream']}"

    async def _connect(self) -> Any:
        import aiomqtt

        if self.client is None:
            client = aiomqtt.Client(
                self.host,
                self.port,
                username=self.username,
                password=self.password,
                identifier=self.client_id,
                timeout=self.timeout_s,
                tls_context=ssl.create_default_context() if self.tls else None,
            )
            await client.__aenter__()
            self.client = client
        return self.client

    async def send(self, events: Sequence[Event]) -> None:
        import aiomqtt

        delivered = 0
        try:
            client = await self._connect()
            for event in events:
                await client.publish(
                    self.topic(event), body_of(event), qos=self.qos, timeout=self.timeout_s
                )
                delivered += 1
        except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
            await self._disconnect()
            raise SinkFailed(f"{redact_url(self.url)}: {exc}", delivered=delivered) from exc
        except BaseException:  # cancelled mid-publish: the connection's state is unknown
            await self._disconnect()
            raise

    async def _disconnect(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            with contextlib.suppress(Exception):  # a broken connection's close may fail too
                await client.__aexit__(None, None, None)

    async def close(self) -> None:
        await self._disconnect()


class WebhookSink:
    """An HTTP POST of each event's JSON, signed: `X-GAD-Signature: sha256=<hex>` is
    HMAC-SHA256 of the body with the shared secret. 2xx: delivered; 408, 429, 5xx or no
    answer: retried; any other status: refused for good (dropped, counted)."""

    batch = 1

    def __init__(self, url: str, *, secret: str, timeout_s: float, name: str = "webhook") -> None:
        import httpx

        self.name = name
        self.url = url
        self.secret = secret
        self.client = httpx.AsyncClient(timeout=timeout_s, follow_redirects=False)

    async def send(self, events: Sequence[Event]) -> None:
        import httpx

        for i, event in enumerate(events):
            body = body_of(event)
            headers = {
                "content-type": "application/json",
                SIGNATURE_HEADER: signature(self.secret, body),
                "X-GAD-Event-Id": event["id"],
                "user-agent": "gad-stream",
            }
            try:
                response = await self.client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise SinkFailed(f"{redact_url(self.url)}: {exc!r}", delivered=i) from exc
            status = response.status_code
            if 200 <= status < 300:
                continue
            message = f"{redact_url(self.url)} answered {status}"
            if status in (408, 429) or status >= 500:
                raise SinkFailed(message, delivered=i)
            raise SinkRejected(message, delivered=i)

    async def close(self) -> None:
        await self.client.aclose()


def open_sinks(urls: Sequence[str], *, webhook_secret: str | None, timeout_s: float) -> list[Sink]:
    """One sink per URL (nothing connects yet); several of a kind are named kind, kind-2..."""
    sinks: list[Sink] = []
    seen: dict[str, int] = {}
    for url in urls:
        scheme = urlsplit(url).scheme.lower()
        kind = {"mqtt": "mqtt", "mqtts": "mqtt", "http": "webhook", "https": "webhook"}.get(
            scheme, "redis"
        )
        seen[kind] = seen.get(kind, 0) + 1
        name = kind if seen[kind] == 1 else f"{kind}-{seen[kind]}"
        if kind == "redis":
            sinks.append(RedisSink(url, timeout_s=timeout_s, name=name))
        elif kind == "mqtt":
            sinks.append(MqttSink(url, timeout_s=timeout_s, name=name))
        else:
            if not webhook_secret:
                raise ConfigError("a webhook event sink needs GAD_EVENT_WEBHOOK_SECRET")
            sinks.append(WebhookSink(url, secret=webhook_secret, timeout_s=timeout_s, name=name))
    return sinks
