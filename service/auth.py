"""API keys: `Authorization: Bearer KEY` for HTTP; for WebSockets the same header, a
`?token=KEY` query parameter, or the subprotocol `gad.key.KEY` (browsers cannot set
headers on a WebSocket). Keys are compared in constant time and never logged.

Each key is a tenant: stream ids are scoped by a digest of the key, so one tenant can
neither read nor write another's stream even with the same stream id.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import HTTPConnection

from runtime.errors import GADError
from service.settings import Settings

SUBPROTOCOL = "gad.v1"
KEY_PROTOCOL_PREFIX = "gad.key."


class AuthError(GADError):
    """Missing or wrong API key (the message never contains the key)."""


def tenant_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def check_key(candidate: str | None, settings: Settings) -> str | None:
    """The tenant id for a valid key; None when auth is off. Raises AuthError."""
    if not settings.auth_enabled:
        return None
    if not candidate:
        raise AuthError("API key required")
    given = candidate.encode()
    matched = None
    for key in settings.api_keys:  # every key is compared: timing does not tell which
        secret = key.get_secret_value()
        if hmac.compare_digest(given, secret.encode()):
            matched = secret
    if matched is None:
        raise AuthError("invalid API key")
    return tenant_of(matched)


def _bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def authorize_request(request: HTTPConnection, settings: Settings) -> str | None:
    """The tenant of an HTTP request's Bearer key (None: auth off), or AuthError (→ 401)."""
    return check_key(_bearer(request.headers.get("authorization")), settings)


def authorize_websocket(websocket: HTTPConnection, settings: Settings) -> str | None:
    """The tenant of a WebSocket's key (header, ?token= or subprotocol), or AuthError."""
    candidate = _bearer(websocket.headers.get("authorization")) or websocket.query_params.get(
        "token"
    )
    if not candidate:  # the first non-empty key subprotocol (a later empty one must not win)
        for protocol in websocket.headers.get("sec-websocket-protocol", "").split(","):
            protocol = protocol.strip()
            key = protocol.removeprefix(KEY_PROTOCOL_PREFIX)
            if key and key != protocol:
                candidate = key
                break
    return check_key(candidate, settings)
