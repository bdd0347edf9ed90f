"""A Jupyter kernel we own: started with the job's environment, its stderr in the task log
(at the level it was written, without the loopback-transport warning), its interrupts
counted (nbclient interrupts only on ``cell_timeout``), and how its process ended.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import re
import signal
import threading
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

log = logging.getLogger("airflow_mlplatform.kernel")

#: ipykernel prints this on every start: jupyter_client binds its ports to 127.0.0.1, so it
#: says nothing about the job; in a task log it reads as an error (Airflow logs stderr at ERROR).
_NOISE = ("Kernel is running over TCP without encryption",)
_LEVEL = re.compile(r"^\[\w+\]\s+(DEBUG|INFO|WARNING|ERROR|CRITICAL)\s*\|")
#: the kernel's last stderr lines, kept for the message when it dies
TAIL_LINES = 20


def kernel_name_for(name: str) -> str:
    """The kernelspec name jupyter_client starts for ``name`` (``python`` is the native kernel).

    :param name: a kernel name as notebooks and papermill write it.
    """
    from jupyter_client.kernelspec import NATIVE_KERNEL_NAME

    return NATIVE_KERNEL_NAME if name == "python" else name


def describe_exit(returncode: int | None) -> str:
    """How a process ended, in words after its name: "exited with status 1", "was killed
    by SIGKILL (...)" (for error messages and records).

    :param returncode: the process's exit status (negative: the signal that killed it).
    """
    if returncode is None:
        return "ended (its exit status is unknown)"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if -returncode == signal.SIGKILL:
            return (
                f"was killed by {name} (nobody in this task sent it: usually the kernel's OOM "
                "killer, when the worker or pod runs out of memory; check memory use and limits)"
            )
        return f"was killed by {name}"
    return f"exited with status {returncode}"


def _is_coroutine(func: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(func)


@lru_cache(maxsize=1)
def _manager_class() -> type:
    from jupyter_client.manager import AsyncKernelManager

    class OwnedKernelManager(AsyncKernelManager):
        """AsyncKernelManager that asks ``on_interrupt`` before each interrupt and keeps the
        clients it hands out (nbclient leaves a client's channels open on a kernel manager it
        does not own: they are stopped with the kernel)."""

        on_interrupt: Callable[[], bool] | None = None
        handed_out: list[Any] | None = None

        def client(self, *args: Any, **kwargs: Any) -> Any:
            kc = super().client(*args, **kwargs)
            if self.handed_out is None:
                self.handed_out = []
            self.handed_out.append(kc)
            return kc

        async def interrupt_kernel(self) -> None:  # type: ignore[override]
            if self.on_interrupt is not None and not self.on_interrupt():
                return
            await super().interrupt_kernel()

    return OwnedKernelManager


class OwnedKernel:
    """One kernel process for one notebook run.

    :param kernel_name: the kernelspec to start.
    :param max_interrupts: interrupts (cell timeouts) before the kernel is killed instead:
        a cell that ignores SIGINT would otherwise be interrupted forever.
    """

    def __init__(self, kernel_name: str, *, max_interrupts: int = 1) -> None:
        self.kernel_name = kernel_name
        self.max_interrupts = max_interrupts
        self.interrupts = 0
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.km: Any = None
        self._reader: threading.Thread | None = None
        self._returncode: int | None = None

    def start(self, *, env: Mapping[str, str], cwd: str) -> Any:
        """Start the kernel process; returns its (async) kernel manager for papermill.

        :param env: the kernel's whole environment.
        :param cwd: the kernel's working folder.
        """
        from jupyter_core.utils import run_sync

        km = _manager_class()(kernel_name=kernel_name_for(self.kernel_name))
        km.on_interrupt = self._on_interrupt
        self.km = km
        read_fd, write_fd = os.pipe()
        try:
            run_sync(km.start_kernel)(env=dict(env), cwd=cwd, stderr=write_fd)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)
        self._reader = threading.Thread(target=self._forward_stderr, args=(read_fd,), daemon=True)
        self._reader.start()
        return km

    def _on_interrupt(self) -> bool:
        self.interrupts += 1
        if self.interrupts > self.max_interrupts:
            log.warning("The kernel did not stop when interrupted: killing it")
            self.kill()
            return False
        log.warning("Interrupting the kernel (cell_timeout)")
        return True

    def _forward_stderr(self, fd: int) -> None:
        with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as stream:
            for raw in stream:
                line = raw.rstrip("\n")
                if not line.strip() or any(noise in line for noise in _NOISE):
                    continue
                self.stderr_tail.append(line)
                match = _LEVEL.match(line)
                level = getattr(logging, match.group(1)) if match else logging.INFO
                log.log(level, "kernel stderr: %s", line)

    @property
    def pid(self) -> int | None:
        """The kernel process's id (None before start or after shutdown)."""
        return getattr(getattr(getattr(self.km, "provisioner", None), "process", None), "pid", None)

    def returncode(self, *, wait: float = 2.0) -> int | None:
        """The kernel process's exit status, waiting up to ``wait`` s for it to end.

        :param wait: seconds to wait for a dying process.
        """
        process = getattr(getattr(self.km, "provisioner", None), "process", None)
        if process is not None:
            with contextlib.suppress(Exception):
                self._returncode = process.wait(timeout=wait)
        return self._returncode

    def kill(self) -> None:
        """SIGKILL the kernel's whole process group (safe from a signal handler or thread)."""
        pid = self.pid
        if pid:
            # kernels run in their own session: kill the whole process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)

    def shutdown(self) -> None:
        """Stop the kernel (at once) and its stderr reader; idempotent."""
        km = self.km
        if km is None:
            return
        from jupyter_core.utils import run_sync

        self.returncode(wait=0)
        for kc in km.handed_out or []:
            with contextlib.suppress(Exception):
                run_sync(kc.stop_channels)() if _is_coroutine(kc.stop_channels) else kc.stop_channels()
        try:
            run_sync(km.shutdown_kernel)(now=True)
        except Exception:  # the kernel may already be gone; make sure of it
            self.kill()
        self.km = None
        if self._reader is not None:
            self._reader.join(timeout=5)
