"""A real MQTT broker for the event tests: the one named by $GAD_TEST_MQTT_URL, the
machine's Mosquitto on 127.0.0.1:1883, or a private `mosquitto` started on a free port.

    with MosquittoServer.start(tmp_dir) as broker:   # private: tests may stop and restart it
        broker.url; broker.stop(); broker.restart()
"""

from __future__ import annotations

import os
import socket
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urlsplit

from tests.servers import LocalServer, server_for_tests

ENV_URL = "GAD_TEST_MQTT_URL"
LOCAL_URL = "mqtt://127.0.0.1:1883"
SETUP_HINT = (
    "run `make setup` (it installs Debian's mosquitto where apt-get runs as root), install "
    "mosquitto yourself, or set GAD_TEST_MQTT_URL=mqtt://host:port"
)


def reachable(url: str, timeout_s: float = 0.5) -> bool:
    """Whether a broker answers an MQTT CONNECT at `url` (a CONNACK that accepts)."""
    parts = urlsplit(url)
    connect = bytes([0x10, 16, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 4]) + b"gadp"
    try:
        with socket.create_connection((parts.hostname, parts.port or 1883), timeout_s) as sock:
            sock.sendall(connect)
            sock.settimeout(timeout_s)
            reply = sock.recv(4)
    except OSError:
        return False
    return len(reply) == 4 and reply[0] == 0x20 and reply[3] == 0


class MosquittoServer(LocalServer):
    """A private mosquitto on a free loopback port; stop/restart keep the port."""

    program = role = "mosquitto"
    paths = ("/usr/sbin/mosquitto",)
    what = "a test MQTT broker"
    log_name = "mosquitto.log"
    probe = staticmethod(reachable)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        config = self.folder / "mosquitto.conf"
        # Persistent: a subscriber's session (clean_session=False) and the QoS 1 messages
        # queued for it survive a restart, as on a site's broker. Started as root, mosquitto
        # drops to the `mosquitto` user unless told otherwise, and then cannot write its
        # database into our private folder ("Permission denied" at shutdown: the session is
        # lost with the restart): it stays the user that started it.
        user = "user root\n" if os.geteuid() == 0 else ""
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self.folder}/\n{user}"
        )
        return [self.binary, "-c", str(config)]


def mqtt_for_tests(folder: Path) -> AbstractContextManager[str]:
    """The URL of a broker for the tests, starting a private one if needed; else RuntimeError."""
    return server_for_tests(
        folder,
        MosquittoServer,
        env_url=ENV_URL,
        local_url=LOCAL_URL,
        refused=lambda url: f"{ENV_URL}={url} does not accept an MQTT CONNECT",
    )
