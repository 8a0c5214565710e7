"""A real Redis Cluster for tests: three masters on loopback (each with replicas if asked),
no persistence.

    with LocalCluster.start(tmp_dir) as cluster:          # or replicas=1: six nodes
        cluster.url                      # redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...
        node = cluster.master_of(key)    # the node that serves the key's slot
        node.kill(); cluster.wait_state("fail")
        node.restart(); cluster.wait_state("ok")   # same port, same nodes.conf: it rejoins

Each node is a `redis-server --cluster-enabled yes` with its own folder (its nodes.conf
lives there). The slots are assigned here (CLUSTER ADDSLOTS, a third per node, then CLUSTER
MEET) rather than with `redis-cli --cluster create`, so only redis-server is needed and the
slot map is known. `cluster-node-timeout` is short (1 s) so that a killed master is marked
failed (and, with replicas, replaced) within seconds, and a restarted one rejoins: Redis
clears a master's FAIL flag once it is reachable again and 2 x node-timeout has passed
without a replica taking over.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Self

import redis
from redis.cluster import key_slot
from redis.exceptions import RedisClusterException

from service.cache.urls import parse_cluster_url
from tests.redis_server import RedisServer

ENV_URL = "GAD_TEST_REDIS_CLUSTER_URL"
SETUP_HINT = (
    "run `make setup` (it installs Debian's redis-server, which runs cluster nodes, where "
    "apt-get runs as root), install redis-server yourself, or set "
    f"{ENV_URL}=redis+cluster://host:port[,host:port...] (a cluster whose state is ok)"
)
SLOTS = 16384
NODE_TIMEOUT_MS = 1000
BUS_OFFSET = 10_000  # a node's cluster bus listens on its port + 10000


def free_cluster_port() -> int:
    """A port that is free, and whose cluster bus port (+10000) is free too. Both are below
    the kernel's ephemeral range (32768+, handed out to outgoing connections, which could
    take them before the node binds), and Redis needs the port <= 55535 anyway."""
    for _ in range(200):
        port = random.randrange(12_000, 22_000)
        try:
            for candidate in (port, port + BUS_OFFSET):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def node_client(port: int, timeout_s: float = 2.0) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=port, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
    )


def cluster_state(port: int) -> str:
    """`cluster_state` of the node on `port` ("ok", "fail"), or "down" if it does not answer."""
    try:
        with node_client(port, timeout_s=0.5) as client:
            return str(client.cluster("INFO")["cluster_state"])
    except (redis.RedisError, OSError):
        return "down"


def node_id(port: int) -> str:
    with node_client(port) as client:
        return str(client.execute_command("CLUSTER", "MYID").decode())


class ClusterNode(RedisServer):
    """One `redis-server --cluster-enabled yes`: kill it and restart it on its port (with
    its nodes.conf); stopping it is a kill, as a crashed host."""

    role = "cluster node"

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def nodes_conf(self) -> Path:
        return self.folder / "nodes.conf"

    def server_args(self) -> list[str]:
        return [
            "--cluster-enabled", "yes",
            "--cluster-config-file", str(self.nodes_conf),
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
        ]  # fmt: skip

    def kill(self) -> None:
        """SIGKILL, as a crashed host: no shutdown save, connections drop at once."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        self.kill()


class LocalCluster:
    """Three cluster-enabled redis-servers on free ports, each master of a third of the slots."""

    def __init__(self, nodes: list[ClusterNode], masters: int) -> None:
        self.nodes = nodes
        self.masters = masters  # the first `masters` nodes start as masters, the rest replicas

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(node.name for node in self.nodes[: self.masters])

    @property
    def running(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.process is not None]

    @classmethod
    def start(
        cls,
        folder: Path,
        *,
        masters: int = 3,
        replicas: int = 0,
        timeout_s: float = 20.0,
        attempts: int = 3,
    ) -> Self:
        """`masters` masters, each with `replicas` replicas; returns once the state is ok.
        Starts over on other ports if a node cannot start (a port taken meanwhile)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("no redis-server on PATH to start a test Redis Cluster")
        for attempt in range(attempts):
            base = folder / f"try-{attempt}"
            ports: list[int] = []
            while len(ports) < masters * (1 + replicas):  # distinct, bus ports included
                port = free_cluster_port()
                if not {port, port + BUS_OFFSET} & {q + d for q in ports for d in (0, BUS_OFFSET)}:
                    ports.append(port)
            cluster = cls([ClusterNode(base / f"node-{p}", p, binary) for p in ports], masters)
            try:
                for node in cluster.nodes:
                    node.restart()
            except RuntimeError:
                cluster.stop()
                if attempt == attempts - 1:
                    raise
                continue
            try:
                cluster._join(timeout_s)
                cluster.wait_state("ok", timeout_s=timeout_s)
            except BaseException:
                cluster.stop()
                raise
            return cluster
        raise AssertionError("unreachable")

    def _join(self, timeout_s: float) -> None:
        """Give each master a contiguous share of the slots, introduce every node to the
        first, then make the others replicas of the masters in turn."""
        masters = self.nodes[: self.masters]
        bounds = [SLOTS * i // len(masters) for i in range(len(masters) + 1)]
        for node, first, end in zip(masters, bounds, bounds[1:], strict=False):
            with node_client(node.port) as client:
                client.execute_command("CLUSTER", "ADDSLOTS", *range(first, end))
        with node_client(self.nodes[0].port) as client:
            for node in self.nodes[1:]:
                client.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        if len(self.nodes) == len(masters):
            return
        ids = {node.port: node_id(node.port) for node in masters}
        deadline = time.monotonic() + timeout_s
        for i, node in enumerate(self.nodes[len(masters) :]):
            master = masters[i % len(masters)]
            with node_client(node.port) as client:
                while True:  # the replica must have heard of its master first
                    try:
                        client.execute_command("CLUSTER", "REPLICATE", ids[master.port])
                        break
                    except redis.ResponseError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)

    def wait_state(self, state: str, *, timeout_s: float = 20.0) -> None:
        """Wait until every running node reports `cluster_state:<state>` and, for "ok",
        they all agree on the slot map and every replica's link to its master is up."""
        deadline = time.monotonic() + timeout_s
        while True:
            states = {node.port: cluster_state(node.port) for node in self.running}
            if all(s == state for s in states.values()) and (state != "ok" or self._settled()):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"Redis Cluster did not reach state {state!r}: {states}")
            time.sleep(0.05)

    def _settled(self) -> bool:
        maps, links = [], []
        for node in self.running:
            with node_client(node.port) as client:
                slots = client.execute_command("CLUSTER", "SLOTS")
                replication = client.info("replication")
            maps.append(sorted((int(s[0]), int(s[1]), int(s[2][1])) for s in slots))
            if replication["role"] == "slave":
                links.append(replication["master_link_status"] == "up")
        return all(m == maps[0] for m in maps) and len(maps[0]) == self.masters and all(links)

    def replicated(self, master: ClusterNode) -> bool:
        """Whether every replica of `master` has all of its writes (equal offsets)."""
        with node_client(master.port) as client:
            info = client.info("replication")
        offset = int(info["master_repl_offset"])
        replicas = [info[f"slave{i}"] for i in range(int(info["connected_slaves"]))]
        return bool(replicas) and all(int(r["offset"]) == offset for r in replicas)

    def master_of(self, key: str) -> ClusterNode:
        """The node serving `key`'s slot (by CLUSTER KEYSLOT on a live node and CLUSTER SLOTS)."""
        with node_client(self.running[0].port) as client:
            slot = int(client.execute_command("CLUSTER", "KEYSLOT", key))
            assert slot == key_slot(key.encode())
            for first, last, master, *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(first) <= slot <= int(last):
                    return next(n for n in self.nodes if n.port == int(master[1]))
        raise RuntimeError(f"no node serves slot {slot}")

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cluster_reachable(url: str) -> bool:
    """Whether the cluster named by a redis+cluster:// URL answers with cluster_state:ok."""
    try:
        with cluster_client(url) as client:
            return str(client.cluster_info()["cluster_state"]) == "ok"
    except (redis.RedisError, RedisClusterException, OSError, ValueError):
        return False


def cluster_client(url: str) -> redis.RedisCluster:
    """A synchronous redis-py cluster client for test checks and clean-up."""
    target = parse_cluster_url(url)
    options = redis.connection.parse_url(target.node_url)
    startup = [redis.cluster.ClusterNode(host, port) for host, port in target.nodes]
    return redis.RedisCluster(
        startup_nodes=startup,
        username=options.get("username"),
        password=options.get("password"),
        ssl=options.get("connection_class") is redis.SSLConnection,
        socket_timeout=5,
    )


def delete_cluster_prefix(url: str, prefix: str) -> int:
    """Delete every key under `prefix` on every master; how many there were."""
    with cluster_client(url) as client:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for key in keys:
            client.delete(key)
        return len(keys)
