"""Run a Dask job script as a local process (the role of a DaskJob's runner pod).

The script gets ``DASK_SCHEDULER_ADDRESS`` (as the Dask Kubernetes operator sets it in the
runner), so ``distributed.Client()`` with no argument connects to the task's cluster. Its
stdout is streamed line by line to a callback (task log and value parser). It runs in its own
process group; :meth:`ScriptProcess.stop` terminates the group, then kills it after a grace period.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from typing import Any

from airflow_mlplatform.exceptions import JobFailedError

TAIL_LINES = 40


class ScriptProcess:
    """One script run, streamed.

    :param argv: the command.
    :param env: extra environment variables.
    :param cwd: working folder.
    :param on_line: called with every line of output (stdout and stderr together).
    :param grace_period: seconds between SIGTERM and SIGKILL on stop.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        on_line: Callable[[str], Any] | None = None,
        grace_period: float = 5.0,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.env = dict(env or {})
        self.cwd = cwd
        self.on_line = on_line
        self.grace_period = grace_period
        self.proc: subprocess.Popen | None = None
        self.tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stopped = False

    def run(self, timeout: float | None = None) -> None:
        """Start the script and wait for it.

        :param timeout: seconds at most (None: only Airflow's execution_timeout).
        :raises JobFailedError: non-zero exit (with the last lines), stop, or timeout.
        """
        with self._lock:
            if self._stopped:
                raise JobFailedError("the script was stopped before it started")
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                text=True,
                errors="replace",
                bufsize=1,
            )
        self._reader = threading.Thread(target=self._read, name="dask-script-output", daemon=True)
        self._reader.start()
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while self.proc.poll() is None:
                if deadline is not None and time.monotonic() > deadline:
                    raise JobFailedError(f"the script {self.argv} did not finish within {timeout} s")
                time.sleep(0.05)
        finally:
            self._terminate()
            self._reader.join(timeout=5)
        if self._stopped:
            raise JobFailedError(f"the script {self.argv} was stopped (task killed)")
        if self.proc.returncode != 0:
            tail = "\n".join(self.tail) or "(no output)"
            raise JobFailedError(
                f"the script {self.argv} exited with code {self.proc.returncode}; last lines:\n{tail}"
            )

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            text = line.rstrip("\n")
            self.tail.append(text)
            if self.on_line is not None:
                self.on_line(text)

    def stop(self) -> None:
        """Stop the script from outside (on_kill): terminate its process group, then kill it."""
        with self._lock:
            self._stopped = True
        self._terminate()

    def _terminate(self) -> None:
        with self._lock:
            proc = self.proc
        if proc is None:
            return
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=self.grace_period)
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
