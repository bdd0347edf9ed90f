"""Run a distributed TensorFlow job's replicas as local processes (TFJobOperator, backend ``local``).

Each replica is one subprocess of the same command with its own ``TF_CONFIG``, the very
document the Kubeflow training operator injects (its controller's ``genTFConfigJSONStr``:
every replica type in the cluster, the evaluator included, keys sorted, compact JSON; and no
TF_CONFIG at all for a job of a single replica), with addresses on free ports of 127.0.0.1. The leader's
(Chief's, else Worker 0's) output is streamed to a callback (the task log and the value
parser); every replica's output also goes to its own log file, and the last lines of a
failing replica are put in the error.

Lifecycle: one replica that exits non-zero fails the job and stops every other; when the
training replicas (Chief/Master/Workers) have all exited 0, PS and Evaluator replicas are
stopped. Each replica runs in its own process group and :meth:`LocalTFJob.stop` (on success,
failure, kill or timeout) terminates every group, then kills what is left after a grace period.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from airflow_mlplatform.exceptions import JobFailedError, ReplicaSpecError

#: Replica types in the order they are started (every one is part of the cluster spec).
ORDER = ("Chief", "Master", "PS", "Worker", "Evaluator")
TRAINING_TYPES = ("Chief", "Master", "Worker")
TAIL_LINES = 40


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct free TCP ports on ``host`` (all sockets held open until every port is picked).

    :param n: how many ports.
    :param host: the interface.
    """
    with ExitStack() as stack:
        ports = []
        for _ in range(n):
            s = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            s.bind((host, 0))
            ports.append(s.getsockname()[1])
        return ports


def cluster_spec(
    counts: Mapping[str, int], ports: Sequence[int], host: str = "127.0.0.1"
) -> dict[str, list[str]]:
    """The ``cluster`` part of TF_CONFIG: lower-case task type to ``host:port`` addresses, as
    Kubeflow's ``genClusterSpec`` builds it: every replica type, the evaluator included.

    :param counts: replica type (``Chief``, ``Worker``...) to count.
    :param ports: one port per replica, in :data:`ORDER`.
    :param host: the address every replica listens on.
    """
    cluster: dict[str, list[str]] = {}
    it = iter(ports)
    for rtype in ORDER:
        if not counts.get(rtype):
            continue
        cluster[rtype.lower()] = [f"{host}:{next(it)}" for _ in range(counts[rtype])]
    return dict(sorted(cluster.items()))


def is_distributed(counts: Mapping[str, int]) -> bool:
    """Whether Kubeflow sets TF_CONFIG for this job: not for a single replica in all
    (its controller's ``isDistributed``: Chief, Evaluator, Master, PS and Worker counted).

    :param counts: replica type to count.
    """
    return sum(int(counts.get(rtype) or 0) for rtype in ORDER) != 1


def tf_config(cluster: Mapping[str, list[str]], rtype: str, index: int) -> str:
    """The TF_CONFIG JSON of one replica, byte for byte as Kubeflow's controller marshals it:
    ``{"cluster":{...},"task":{"type":"worker","index":0},"environment":"cloud"}``.

    :param cluster: from :func:`cluster_spec`.
    :param rtype: replica type (any case).
    :param index: the replica's index within its type.
    """
    document = {
        "cluster": dict(sorted(cluster.items())),
        "task": {"type": rtype.lower(), "index": index},
        "environment": "cloud",
    }
    return json.dumps(document, separators=(",", ":"))


@dataclass
class _Replica:
    rtype: str
    index: int
    proc: subprocess.Popen
    log_path: Path
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    reader: threading.Thread | None = None
    stopped_by_us: bool = False

    @property
    def name(self) -> str:
        return f"{self.rtype.lower()}-{self.index}"


class LocalTFJob:
    """The replicas of one TensorFlow job as local processes.

    :param command: the training command (argv), run by every replica.
    :param counts: replica type to count (already validated).
    :param env: environment of every replica (TF_CONFIG is added per replica).
    :param cwd: working folder of the replicas.
    :param log_dir: folder for one log file per replica.
    :param on_leader_line: called with each line the leader prints (task log, value parser).
    :param grace_period: seconds between SIGTERM and SIGKILL when stopping replicas.
    :param poll_interval: seconds between checks of the replicas' exit codes.
    """

    def __init__(
        self,
        command: Sequence[str],
        counts: Mapping[str, int],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        log_dir: str | Path,
        on_leader_line: Callable[[str], Any] | None = None,
        grace_period: float = 5.0,
        poll_interval: float = 0.1,
    ) -> None:
        if not command:
            raise ReplicaSpecError("a TensorFlow job needs a command, e.g. ['python', 'train.py']")
        self.command = [str(c) for c in command]
        self.counts = {k: int(v) for k, v in counts.items() if v}
        self.env = dict(env or {})
        self.cwd = cwd
        self.log_dir = Path(log_dir)
        self.on_leader_line = on_leader_line
        self.grace_period = grace_period
        self.poll_interval = poll_interval
        self.cluster: dict[str, list[str]] = {}
        self.replicas: list[_Replica] = []
        self._lock = threading.Lock()
        self._stopping = False
        lead = next((t for t in ("Chief", "Master") if self.counts.get(t)), "Worker")
        self.leader = (lead, 0)

    # -- start ---------------------------------------------------------------------------
    def start(self) -> None:
        """Pick free ports and start every replica (each in its own process group)."""
        self.cluster = cluster_spec(self.counts, free_ports(sum(self.counts.values())))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        base_env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        base_env.pop("TF_CONFIG", None)  # only what Kubeflow would inject
        try:
            for rtype in ORDER:
                for index in range(self.counts.get(rtype, 0)):
                    self._start_one(rtype, index, base_env)
        except BaseException:
            self.stop()
            raise

    def _start_one(self, rtype: str, index: int, base_env: Mapping[str, str]) -> None:
        with self._lock:
            if self._stopping:
                raise JobFailedError("the TensorFlow job was stopped while its replicas were starting")
            env = dict(base_env)
            if is_distributed(self.counts):
                env["TF_CONFIG"] = tf_config(self.cluster, rtype, index)
            log_path = self.log_dir / f"{rtype.lower()}-{index}.log"
            proc = subprocess.Popen(
                self.command,
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                text=True,
                errors="replace",
                bufsize=1,
            )
            replica = _Replica(rtype, index, proc, log_path)
            self.replicas.append(replica)
        is_leader = (rtype, index) == self.leader
        replica.reader = threading.Thread(
            target=self._read,
            args=(replica, self.on_leader_line if is_leader else None),
            name=f"tfjob-{replica.name}",
            daemon=True,
        )
        replica.reader.start()

    @staticmethod
    def _read(replica: _Replica, callback: Callable[[str], Any] | None) -> None:
        stream: IO[str] | None = replica.proc.stdout
        assert stream is not None
        with replica.log_path.open("w") as log:
            for line in stream:
                log.write(line)
                log.flush()
                text = line.rstrip("\n")
                replica.tail.append(text)
                if callback is not None:
                    callback(text)

    # -- wait ----------------------------------------------------------------------------
    def wait(self, timeout: float | None = None) -> None:
        """Wait until the training replicas have all exited 0; stop the rest; raise on failure.

        :param timeout: seconds to wait at most (None: no limit; Airflow's execution_timeout
            interrupts the wait anyway).
        :raises JobFailedError: a replica exited non-zero (its last lines are in the message),
            or the timeout passed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                failed = next(
                    (
                        r
                        for r in self.replicas
                        if not r.stopped_by_us and r.proc.poll() is not None and r.proc.returncode != 0
                    ),
                    None,
                )
                if failed is not None:
                    self._finish_reading(failed)
                    raise JobFailedError(self._failure_message(failed))
                if self._stopping:
                    raise JobFailedError("the TensorFlow job was stopped (task killed)")
                if all(r.proc.poll() == 0 for r in self.replicas if r.rtype in TRAINING_TYPES):
                    return
                if deadline is not None and time.monotonic() > deadline:
                    raise JobFailedError(
                        f"the TensorFlow job did not finish within {timeout} s; replicas still running: "
                        + ", ".join(r.name for r in self.replicas if r.proc.poll() is None)
                    )
                time.sleep(self.poll_interval)
        finally:
            self.stop()
            for r in self.replicas:
                self._finish_reading(r)

    def _finish_reading(self, replica: _Replica) -> None:
        if replica.reader is not None:
            replica.reader.join(timeout=5)

    def _failure_message(self, replica: _Replica) -> str:
        rc = replica.proc.returncode
        how = f"was killed by signal {-rc}" if rc < 0 else f"exited with code {rc}"
        tail = "\n".join(replica.tail) or "(no output)"
        return (
            f"TensorFlow replica {replica.name} {how}; the other replicas were stopped. "
            f"Last lines of its output (full log: {replica.log_path}):\n{tail}"
        )

    # -- stop ----------------------------------------------------------------------------
    def stop(self) -> None:
        """Terminate every replica's process group, then kill what is left after the grace period.

        Safe to call more than once and from another thread (``on_kill``).
        """
        with self._lock:
            self._stopping = True
            replicas = list(self.replicas)
        alive = [r for r in replicas if r.proc.poll() is None]
        for r in alive:
            r.stopped_by_us = True
        # Only the groups of replicas still running: the PID of a replica already reaped may be
        # reused by an unrelated process group leader, which must never be signalled.
        for r in alive:
            self._signal_group(r.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_period
        for r in alive:
            with suppress(subprocess.TimeoutExpired):
                r.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for r in alive:
            self._signal_group(r.proc.pid, signal.SIGKILL)  # reaped now, but its group may linger
        for r in alive:
            with suppress(subprocess.TimeoutExpired):  # a process in D state
                r.proc.wait(timeout=5)

    @staticmethod
    def _signal_group(pid: int, sig: int) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    def run(self, timeout: float | None = None) -> None:
        """Start the replicas and wait for them (see :meth:`wait`).

        :param timeout: seconds to wait at most.
        """
        self.start()
        self.wait(timeout)

    def log_files(self) -> dict[str, str]:
        """Replica name to its log file."""
        return {r.name: str(r.log_path) for r in self.replicas}
