"""A StatsD server for tests: a UDP socket on 127.0.0.1 (free port) that keeps every line it receives,
and Airflow's ``[metrics]`` pointed at it (StatsD with InfluxDB-style tags, as statsd-exporter reads)."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Line:
    """``name,tag=v,...:value|type`` parsed."""

    name: str
    tags: dict[str, str]
    value: float
    type: str

    @classmethod
    def parse(cls, text: str) -> Line:
        head, _, rest = text.partition(":")
        name, *pairs = head.split(",")
        value, _, kind = rest.partition("|")
        return cls(name, dict(p.split("=", 1) for p in pairs), float(value), kind.split("|")[0])


@dataclass
class Listener:
    port: int
    raw: list[str] = field(default_factory=list)

    def lines(self, name: str, **tags: str) -> list[Line]:
        """The lines of metric ``name`` (the ``airflow.`` prefix left out) whose tags include ``tags``."""
        out = []
        for text in list(self.raw):
            line = Line.parse(text)
            if line.name == f"airflow.{name}" and all(line.tags.get(k) == v for k, v in tags.items()):
                out.append(line)
        return out

    def wait_for(self, name: str, seconds: float = 5.0, **tags: str) -> list[Line]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = self.lines(name, **tags)
            if found:
                return found
            time.sleep(0.05)
        return []


@contextmanager
def statsd_listener() -> Iterator[Listener]:
    """Listen on a free UDP port and point Airflow's StatsD client there for the block."""
    from airflow.sdk._shared.observability.metrics import stats
    from airflow.sdk._shared.observability.metrics.base_stats_logger import NoStatsLogger
    from airflow.sdk.observability.metrics.stats_utils import get_stats_factory

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    listener = Listener(port=sock.getsockname()[1])
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                data = sock.recv(65535)
            except OSError:
                continue
            listener.raw.extend(x for x in data.decode().splitlines() if x)

    thread = threading.Thread(target=receive, daemon=True)
    thread.start()
    env = {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(listener.port),
        "AIRFLOW__METRICS__STATSD_PREFIX": "airflow",
        "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    stats.initialize(factory=get_stats_factory(), export_legacy_names=False)
    try:
        yield listener
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        stats.initialize(factory=NoStatsLogger, export_legacy_names=False)
        stop.set()
        thread.join(2)
        sock.close()
