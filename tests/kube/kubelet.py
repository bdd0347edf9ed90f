"""A fake kubelet: runs each pod's first container as a local subprocess.

Same command, args, env (the pod's ``env`` values over a minimal PATH/HOME/LANG base) and working
directory (``workingDir`` when it exists here, else a fresh temporary folder). It moves the pod
Pending -> Running -> Succeeded/Failed with the real exit code, serves the container's output on
``GET .../pods/NAME/log`` (``follow``, ``timestamps``, ``tailLines``), and kills the subprocess (its
whole process group) when the pod is deleted. It is a controller of :class:`emulator.Emulator`:
it works in the emulator's loop, so its status updates are no API requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import aiohttp.web

from kube.emulator import Emulator, now_iso

PODS = "v1/pods"


@dataclass
class PodProcess:
    name: str
    namespace: str
    proc: asyncio.subprocess.Process | None = None
    lines: list[tuple[str, bytes]] = field(default_factory=list)
    partial: bytes = b""
    started: bool = False
    finished: bool = False
    exit_code: int | None = None
    deleted: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add_output(self, chunk: bytes) -> None:
        data = self.partial + chunk
        *complete, self.partial = data.split(b"\n")
        ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        self.lines.extend((ts, line + b"\n") for line in complete)
        self._notify()

    def finish(self) -> None:
        if self.partial:
            ts = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            self.lines.append((ts, self.partial))
            self.partial = b""
        self.finished = True
        self._notify()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class FakeKubelet:
    """The kubelet controller; add it with ``emulator.add_controller(FakeKubelet())``.

    :param start_delay: seconds a pod stays Pending before its process starts.
    :param kill_grace: seconds between SIGTERM and SIGKILL when a pod is deleted.
    """

    resources = (PODS,)

    def __init__(self, *, start_delay: float = 0.05, kill_grace: float = 2.0) -> None:
        self.start_delay = start_delay
        self.kill_grace = kill_grace
        self.pods: dict[tuple[str, str], PodProcess] = {}
        self.subresources = {(PODS, "log"): self.serve_log}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._log_streams: set[Any] = set()

    # ---- for tests ----------------------------------------------------------------------------
    def running(self) -> list[str]:
        """Names of pods whose subprocess is still alive."""
        return [p.name for p in self.pods.values() if p.proc is not None and p.proc.returncode is None]

    def drop_log_streams(self) -> int:
        """Cut every open ``follow`` log stream (as a dropped connection would)."""
        n = 0
        for transport in list(self._log_streams):
            transport.abort()
            n += 1
        return n

    def pids(self) -> dict[str, int]:
        return {p.name: p.proc.pid for p in self.pods.values() if p.proc is not None}

    # ---- controller ---------------------------------------------------------------------------
    async def on_event(self, emulator: Emulator, event_type: str, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        key = (meta.get("namespace") or "default", meta["name"])
        if event_type == "ADDED" and key not in self.pods:
            self.pods[key] = PodProcess(meta["name"], key[0])
            task = asyncio.create_task(self._run(emulator, pod, self.pods[key]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif event_type == "DELETED" and key in self.pods:
            pp = self.pods[key]
            pp.deleted = True
            await self._kill(pp)

    async def _kill(self, pp: PodProcess) -> None:
        proc = pp.proc
        if proc is None or proc.returncode is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                await asyncio.wait_for(proc.wait(), self.kill_grace)
                return
            except asyncio.TimeoutError:
                continue

    async def _run(self, emulator: Emulator, pod: dict[str, Any], pp: PodProcess) -> None:
        ns, name = pp.namespace, pp.name
        await emulator.set_status(
            PODS,
            ns,
            name,
            {
                "phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": now_iso()}],
                "qosClass": "BestEffort",
            },
        )
        await asyncio.sleep(self.start_delay)
        if pp.deleted:
            return
        container = pod["spec"]["containers"][0]
        argv = [*container.get("command", []), *container.get("args", [])]
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
        env["HOSTNAME"] = name
        env.update({e["name"]: e.get("value", "") for e in container.get("env", []) if "name" in e})
        workdir = container.get("workingDir")
        if not workdir or not os.path.isdir(workdir):
            workdir = tempfile.mkdtemp(prefix=f"fake-kubelet-{name}-")
        started = now_iso()
        try:
            pp.proc = await asyncio.create_subprocess_exec(
                *argv,
                env=env,
                cwd=workdir,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as e:
            pp.started = pp.finished = True
            pp.add_output(f"exec failed: {e}\n".encode())
            pp.finish()
            await self._terminated(emulator, pp, container["name"], 127, started, "StartError")
            return
        pp.started = True
        await emulator.set_status(
            PODS,
            ns,
            name,
            {
                "phase": "Running",
                "startTime": started,
                "podIP": "127.0.0.1",
                "hostIP": "127.0.0.1",
                "conditions": [
                    {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
                    {"type": "Initialized", "status": "True", "lastTransitionTime": started},
                    {"type": "ContainersReady", "status": "True", "lastTransitionTime": started},
                    {"type": "Ready", "status": "True", "lastTransitionTime": started},
                ],
                "containerStatuses": [
                    {
                        "name": container["name"],
                        "image": container.get("image", ""),
                        "imageID": "",
                        "ready": True,
                        "started": True,
                        "restartCount": 0,
                        "state": {"running": {"startedAt": started}},
                    }
                ],
            },
        )
        assert pp.proc.stdout is not None
        while True:
            chunk = await pp.proc.stdout.read(65536)
            if not chunk:
                break
            pp.add_output(chunk)
        code = await pp.proc.wait()
        pp.exit_code = code
        pp.finish()
        if pp.deleted:
            return
        await self._terminated(emulator, pp, container["name"], code, started, None)

    async def _terminated(
        self, emulator: Emulator, pp: PodProcess, cname: str, code: int, started: str, reason: str | None
    ) -> None:
        code = code if code >= 0 else 128 - code  # killed by a signal
        finished = now_iso()
        ok = code == 0
        await emulator.set_status(
            PODS,
            pp.namespace,
            pp.name,
            {
                "phase": "Succeeded" if ok else "Failed",
                "conditions": [
                    {"type": "Ready", "status": "False", "lastTransitionTime": finished},
                    {"type": "ContainersReady", "status": "False", "lastTransitionTime": finished},
                ],
                "containerStatuses": [
                    {
                        "name": cname,
                        "image": "",
                        "imageID": "",
                        "ready": False,
                        "started": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {
                                "exitCode": code,
                                "reason": reason or ("Completed" if ok else "Error"),
                                "startedAt": started,
                                "finishedAt": finished,
                            }
                        },
                    }
                ],
            },
        )

    # ---- GET .../pods/NAME/log ----------------------------------------------------------------
    async def serve_log(self, emulator: Emulator, request: Any) -> aiohttp.web.StreamResponse:
        ns, name = request.namespace or "default", request.name
        if emulator.get_object(PODS, ns, name) is None and (ns, name) not in self.pods:
            return emulator._not_found(emulator.kinds[PODS], PODS, name, "GET")
        pp = self.pods.get((ns, name))
        if pp is None or not pp.started:
            return emulator._error(
                400,
                "BadRequest",
                f'container "job" in pod "{name}" is waiting to start: ContainerCreating',
            )
        params = request.params
        follow = str(params.get("follow", "")).lower() in ("true", "1")
        stamps = str(params.get("timestamps", "")).lower() in ("true", "1")
        tail = int(params["tailLines"]) if params.get("tailLines", "").isdigit() else None

        def render(items: list[tuple[str, bytes]]) -> bytes:
            return b"".join((ts.encode() + b" " + line) if stamps else line for ts, line in items)

        start = max(0, len(pp.lines) - tail) if tail is not None else 0
        if not follow:
            return aiohttp.web.Response(body=render(pp.lines[start:]), content_type="text/plain")
        resp = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "text/plain"})
        await resp.prepare(request._raw_request)
        sent = start
        transport = request._raw_request.transport
        self._log_streams.add(transport)
        try:
            while True:
                waiter = pp.changed
                if sent < len(pp.lines):
                    batch = pp.lines[sent:]
                    sent += len(batch)
                    await resp.write(render(batch))
                    continue
                if pp.finished or (pp.deleted and (pp.proc is None or pp.proc.returncode is not None)):
                    break
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(waiter.wait(), 1.0)
            await resp.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._log_streams.discard(transport)
        return resp

    async def aclose(self) -> None:
        for pp in self.pods.values():
            await self._kill(pp)
