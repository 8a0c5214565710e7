"""Which backend a cache URL names (GAD_REDIS_URL), checked once, without connecting.

    unset, "", "memory"                                   in process (one replica)
    redis://[user:pass@]host:6379/0   rediss://   unix:///run/redis.sock?db=0   one Redis
    redis+cluster://[user:pass@]host:port[,host:port...][/0][?option=value]    Redis Cluster
    rediss+cluster://...                                                 the same over TLS

A cluster is a URL scheme rather than a separate switch: one setting carries everything
(seed nodes, credentials, options), so a deployment changes one variable, and a cluster can
never be half-configured (a switch without a matching URL, or the reverse). Several seed
nodes let the client find the cluster while one of them is down; it discovers the rest
(CLUSTER SLOTS). Options after `?` are redis-py connection options, as for redis://.

Standard library only: service/settings.py validates GAD_REDIS_URL with it at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from runtime.errors import ConfigError

Backend = Literal["memory", "redis", "cluster"]
SINGLE_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}  # → a node's scheme
DEFAULT_PORT = 6379


@dataclass(frozen=True)
class ClusterURL:
    """A redis+cluster:// URL taken apart: its seed nodes, and one node's own URL (the first
    seed's, with the credentials and options) for redis-py to read the options from."""

    nodes: tuple[tuple[str, int], ...]
    node_url: str


def cache_backend(url: str | None) -> Backend:
    """ "memory", "redis" or "cluster"; ConfigError (naming the URL, redacted) otherwise."""
    if is_memory_url(url):
        return "memory"
    assert url is not None
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in SINGLE_SCHEMES:
        return "redis"
    if scheme in CLUSTER_SCHEMES:
        parse_cluster_url(url)
        return "cluster"
    raise ConfigError(
        "cache URL must be empty or 'memory' (in-process), redis://, rediss:// or unix:// "
        f"(one Redis), or redis+cluster:// or rediss+cluster:// (Redis Cluster); got "
        f"{redact_url(url)!r}"
    )


def parse_cluster_url(url: str) -> ClusterURL:
    """The seed nodes of `redis+cluster://[user:pass@]h1:p1[,h2:p2...][/0][?opts]`."""
    shown = redact_url(url)
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ConfigError(f"a Redis Cluster URL starts with redis+cluster://, got {shown!r}")
    userinfo, _, hosts = parts.netloc.rpartition("@")
    if parts.path not in ("", "/", "/0"):
        raise ConfigError(f"Redis Cluster has only database 0; drop {parts.path!r} from {shown!r}")
    nodes = tuple(_node(text.strip(), shown) for text in hosts.split(","))
    host, port = nodes[0]
    host = f"[{host}]" if ":" in host else host
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return ClusterURL(nodes, urlunsplit((scheme, netloc, "/0", parts.query, "")))


def _node(text: str, shown: str) -> tuple[str, int]:
    """(host, port) of one `host:port`, `host` or `[ipv6]:port` seed."""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        port = 0
    if not host or not 1 <= port <= 65535 or any(c in host for c in "/?#@ "):
        raise ConfigError(
            f"a Redis Cluster URL lists seed nodes as host:port[,host:port...]; "
            f"{text!r} is not one, in {shown!r}"
        )
    return host, port


def redact_url(url: str) -> str:
    """`url` with any password (in the authority or a `password=` query) replaced by ***."""
    try:
        parts = urlsplit(url)  # ValueError for a malformed [ipv6] authority
        password, user = parts.password, parts.username or ""
    except ValueError:
        return f"{url.split('://', 1)[0]}://(unparseable address)" if "://" in url else "***"
    netloc = parts.netloc
    if password is not None:
        netloc = f"{user}:***@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() == "password" else v) for k, v in pairs])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def is_memory_url(url: str | None) -> bool:
    return url is None or url.strip() in ("", "memory", "memory://")
