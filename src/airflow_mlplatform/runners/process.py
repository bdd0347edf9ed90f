"""Run one command as a local subprocess: stream its output into the task log, parse
``record()`` lines and metrics as they arrive, and kill its whole process group on demand.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from airflow_mlplatform.values import JobOutputs, StreamParser

log = logging.getLogger(__name__)


@dataclass
class ProcessResult:
    """How a process ended and what it reported.

    :param returncode: exit status (negative: killed by that signal).
    :param outputs: recorded values and metric rows from its stdout.
    :param tail: its last lines of output, for error messages.
    """

    returncode: int
    outputs: JobOutputs
    tail: list[str]


class ProcessRunner:
    """One subprocess, in its own session so that ``kill()`` reaches its children too.

    :param argv: the command.
    :param env: its whole environment.
    :param cwd: its working folder.
    :param on_line: called with every line of output (default: the task log).
    :param tail_lines: how many last lines to keep for error messages.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        on_line: Callable[[str], object] | None = None,
        tail_lines: int = 40,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.on_line = on_line or (lambda line: log.info("%s", line))
        self.tail_lines = tail_lines
        self._proc: subprocess.Popen[str] | None = None

    def run(self) -> ProcessResult:
        """Start the process, stream its output, wait for it to end."""
        parser = StreamParser()
        tail: collections.deque[str] = collections.deque(maxlen=self.tail_lines)
        self._proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        try:
            assert self._proc.stdout is not None
            for line in self._proc.stdout:
                line = line.rstrip("\n")
                parser.feed_line(line)
                tail.append(line)
                self.on_line(line)
            returncode = self._proc.wait()
        except BaseException:
            self.kill()
            raise
        finally:
            if self._proc.stdout is not None:
                self._proc.stdout.close()
        return ProcessResult(returncode=returncode, outputs=parser.close(), tail=list(tail))

    def kill(self) -> None:
        """Kill the process and everything it started (safe from a signal handler)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
