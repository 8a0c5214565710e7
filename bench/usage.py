"""What the load benchmarks read off the machine: a process's CPU time and RSS (psutil when
installed, else /proc), the whole machine's busy CPU time, and a Redis's memory and CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

KiB, MiB = 1024, 1 << 20


@dataclass(frozen=True)
class Usage:
    cpu_s: float  # user + system CPU seconds since the process started
    rss: int  # resident bytes now


def process_usage(pid: int) -> Usage:
    try:
        import psutil
    except ImportError:
        return _proc_usage(pid)
    process = psutil.Process(pid)
    times = process.cpu_times()
    return Usage(times.user + times.system, process.memory_info().rss)


def _proc_usage(pid: int) -> Usage:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    ticks = os.sysconf("SC_CLK_TCK")
    cpu_s = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime (fields 14, 15)
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * KiB
    return Usage(cpu_s, rss)


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, summed over cores."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    return (total - idle) / ticks, total / ticks


@dataclass(frozen=True)
class RedisSample:
    used_memory: int  # INFO memory used_memory
    keys_bytes: int  # MEMORY USAGE of the prefix's keys, summed
    keys: int
    cpu_s: float  # INFO cpu used_cpu_user + used_cpu_sys


def redis_sample(url: str, prefix: str) -> RedisSample:
    """One Redis's figures, or (redis+cluster:// URL) the sum over the cluster's masters."""
    used = keys_bytes = keys = 0
    cpu_s = 0.0
    for client in _redis_nodes(url):
        with client:
            names = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            keys += len(names)
            keys_bytes += sum(client.memory_usage(key, samples=0) or 0 for key in names)
            cpu = client.info("cpu")
            cpu_s += float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])
            used += int(client.info("memory")["used_memory"])
    return RedisSample(used, keys_bytes, keys, cpu_s)


def _redis_nodes(url: str) -> list:
    """A client per Redis to sample: the URL's, or one per master of a Redis Cluster."""
    import redis

    from service.cache.urls import cache_backend, parse_cluster_url

    if cache_backend(url) != "cluster":
        return [redis.Redis.from_url(url, socket_timeout=5)]
    target = parse_cluster_url(url)
    options = redis.connection.parse_url(target.node_url)
    auth = {"username": options.get("username"), "password": options.get("password")}
    seeds = [redis.cluster.ClusterNode(host, port) for host, port in target.nodes]
    with redis.RedisCluster(startup_nodes=seeds, socket_timeout=5, **auth) as cluster:
        masters = [(node.host, node.port) for node in cluster.get_primaries()]
    return [redis.Redis(host=h, port=p, socket_timeout=5, **auth) for h, p in masters]


def redis_used_memory(url: str) -> int:
    """INFO memory used_memory, bytes."""
    import redis

    with redis.Redis.from_url(url, socket_timeout=5) as client:
        return int(client.info("memory")["used_memory"])
