"""A fake KServe controller (Knative/serverless mode) for the Kubernetes test bed (a controller of
tests/kube/emulator.py), serving real models with a real MLServer.

It keeps KServe's and Knative's rules, which a rollout has to live with:

- Revisions: each generation (``metadata.generation`` above ``status.observedGeneration``, taken
  after ``lag`` seconds; only the newest of several) whose predictor template (``spec.predictor``
  minus ``canaryTrafficPercent``) differs from the LATEST CREATED revision's makes a new revision
  ``{name}-predictor-{n:05d}``, even when an older revision had that template (a restored spec is
  a new revision that must load and become ready again); a change of ``canaryTrafficPercent``
  alone makes none. Knative goes on bringing up a revision that a newer one supersedes.
- Traffic, as KServe's ksvc reconciler writes it and Knative resolves it, from the moment a
  generation is reconciled (before its revision is ready): with ``canaryTrafficPercent`` p and a
  ``latestRolledoutRevision`` R: ``latestRevision: true`` p% (Knative's latestReadyRevision: while
  the newest revision loads or after it failed, the previous READY one) and, when p < 100, R
  (tagged ``prev``) 100-p%; else 100% to latestReadyRevision. latestRolledoutRevision moves (and
  previousRolledoutRevision with it) as KServe's PropagateStatus moves it: when latestReadyRevision
  gets 100% through ``latestRevision``; a canary share set on the rolled-out revision itself rolls
  it back to previousRolledoutRevision.
- Tags: the ``latest`` entry is tagged (with its own URL, a router port) only when the
  InferenceService has the annotation ``serving.kserve.io/enable-tag-routing: "true"``; KServe tags
  the ``prev`` entry always. Untagged entries have no url. The fake reads the annotation when it
  reconciles a generation: set it with (or before) a spec change. (Real KServe also copies the
  InferenceService's annotations into the revision template, so an annotation-only change makes
  a new revision there; the fake does not model annotation-only changes.)
- latestCreatedRevision is the newest revision, latestReadyRevision the newest ready one (a
  revision that failed to load never is); Ready/PredictorReady/LatestDeploymentReady describe the
  latest created revision (Unknown while it loads, False when it failed).

The "storage initializer" copies ``spec.predictor.model.storageUri`` (``pvc://CLAIM/path`` from the
folders in ``pvcs``, or one ``http(s)://`` file) under the model server's repository; the revision's
model is loaded into the one shared MLServer process (``.venv-serving``, started on the first load,
killed at the end of the session) with its repository API, so a file that is not a loadable
scikit-learn model fails for real (``BlockedByFailedLoad``). The router (one loopback port per URL)
rewrites ``/v2/models/{isvc}/...`` to the revision's MLServer model. Revisions that no traffic
entry, latestCreated, latestReady or latestRolledout names are unloaded (a revision routed again
loads again, as one scaled to zero comes back); deleting the InferenceService unloads all of its
revisions and closes its ports.

The router answers with an ``x-kserve-revision`` header naming the revision that answered, FOR
TESTS ONLY: real KServe/Knative send no such header, and production code must not rely on it.

For tests: ``lag``, ``hold`` (a set of (namespace, name) whose revisions stay loading while in it),
``pvcs`` (claim name -> local folder), ``revisions(ns, name)``, ``url(ns, name, tag)``,
``reconciled`` (generations reconciled) and ``server`` (the :class:`ModelServer`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import aiohttp.web

from fake_training_operator import _free_ports
from kube.emulator import now_iso
from repo_paths import REPO

INFERENCESERVICES = "serving.kserve.io/v1beta1/inferenceservices"
SERVING_PYTHON_ENV = "MLPLATFORM_SERVING_PYTHON"
REVISION_HEADER = "x-kserve-revision"  # the fake's, for tests: KServe sends none
TAG_ROUTING_ANNOTATION = "serving.kserve.io/enable-tag-routing"
#: The model file of a folder artifact: the first of these, else the folder's only file.
MODEL_FILES = ("model.joblib", "model.pkl", "model.pickle")
#: Condition types of an InferenceService (Knative mode), in the order they are listed.
CONDITIONS = ("IngressReady", "LatestDeploymentReady", "PredictorReady", "Ready", "RoutesReady")
NOT_READY = ("Ready", "PredictorReady", "LatestDeploymentReady")


class RevisionFailed(Exception):
    """A revision cannot serve: the message is the InferenceService's failure message."""


class StorageError(RevisionFailed):
    """The storage initializer could not fetch the model."""


class LoadError(RevisionFailed):
    """The model server could not load the model (or did not start)."""


def serving_python() -> Path:
    """The interpreter of the serving venv (``MLPLATFORM_SERVING_PYTHON``, else .venv-serving)."""
    return Path(os.environ.get(SERVING_PYTHON_ENV) or REPO / ".venv-serving" / "bin" / "python")


def template_digest(predictor: dict[str, Any]) -> str:
    """sha256 of the predictor template (``canaryTrafficPercent`` is routing, not template)."""
    template = {k: v for k, v in predictor.items() if k != "canaryTrafficPercent"}
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()


def merged_conditions(
    current: list[dict[str, Any]] | None, updates: dict[str, tuple[str, str | None, str | None]]
) -> list[dict[str, Any]]:
    """The condition list with ``updates`` (type -> (status, reason, message)) applied.

    lastTransitionTime changes only when a condition's status does (as knative.dev/pkg does).
    """
    by_type = {c["type"]: c for c in current or []}
    for kind, (status, reason, message) in updates.items():
        old = by_type.get(kind)
        cond: dict[str, Any] = {"type": kind, "status": status}
        cond["lastTransitionTime"] = (
            old["lastTransitionTime"] if old and old.get("status") == status else now_iso()
        )
        if reason:
            cond["reason"] = reason
        if message:
            cond["message"] = message
        by_type[kind] = cond
    return [by_type[k] for k in sorted(by_type)]


def model_file(folder: Path) -> Path:
    """The model file of a folder artifact (see :data:`MODEL_FILES`)."""
    for name in MODEL_FILES:
        if (folder / name).is_file():
            return folder / name
    files = [p for p in folder.rglob("*") if p.is_file()]
    if len(files) == 1:
        return files[0]
    raise StorageError(f"no model file ({', '.join(MODEL_FILES)}) in the folder, and not exactly one file")


class ModelServer:
    """The one MLServer process of the session, started on first use (about 5-15 s).

    :param python: the serving venv's interpreter (default :func:`serving_python`).
    """

    def __init__(self, *, python: Path | None = None) -> None:
        self.python = python or serving_python()
        self.root = Path(tempfile.mkdtemp(prefix="fake-kserve-"))
        self.models = self.root / "models"
        self.models.mkdir()
        self.url = ""
        self.proc: asyncio.subprocess.Process | None = None
        self._lock: asyncio.Lock | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def started(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))
        return self._session

    async def start(self) -> None:
        """Start ``mlserver start ROOT`` in its own process group and wait until it is ready."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.started:
                return
            if not self.python.exists():
                raise LoadError(f"no model server: {self.python} does not exist (run `make serving-venv`)")
            http_port, grpc_port, metrics_port = _free_ports(3)
            settings = {
                "host": "127.0.0.1",
                "http_port": http_port,
                "grpc_port": grpc_port,
                "metrics_port": metrics_port,
                "metrics_endpoint": None,
                "parallel_workers": 0,
                "load_models_at_startup": False,
                "model_repository_root": str(self.models),
            }
            (self.root / "settings.json").write_text(json.dumps(settings))
            log = open(self.root / "mlserver.log", "ab")  # noqa: SIM115 - the child's, for its lifetime
            try:
                self.proc = await asyncio.create_subprocess_exec(
                    str(self.python),
                    "-m",
                    "mlserver.cli.main",
                    "start",
                    str(self.root),
                    cwd=self.root,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            finally:
                log.close()
            atexit.register(self.kill)  # should the session end without the fixture's teardown
            self.url = f"http://127.0.0.1:{http_port}"
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 120
            while loop.time() < deadline:
                if self.proc.returncode is not None:
                    break
                with contextlib.suppress(aiohttp.ClientError):
                    async with self.session().get(f"{self.url}/v2/health/ready") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.25)
            tail = (self.root / "mlserver.log").read_text(errors="replace").strip().splitlines()[-5:]
            self.kill()
            raise LoadError("the model server did not start: " + " | ".join(tail))

    async def load(self, model: str, folder: Path, file: Path) -> None:
        """Load ``folder``'s ``file`` as the MLServer model ``model`` (LoadError with the cause)."""
        settings = {
            "name": model,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": f"./{file.relative_to(folder)}"},
        }
        (folder / "model-settings.json").write_text(json.dumps(settings))
        await self.start()
        async with self.session().post(f"{self.url}/v2/repository/models/{model}/load") as resp:
            if resp.status == 200:
                return
            text = (await resp.text()).strip()
        lines = [line for line in text.splitlines() if line.strip()]
        raise LoadError(lines[-1] if lines else f"HTTP {resp.status} from the model server")

    async def unload(self, model: str) -> None:
        if not self.started:
            return
        with contextlib.suppress(aiohttp.ClientError):
            async with self.session().post(f"{self.url}/v2/repository/models/{model}/unload"):
                pass

    def kill(self) -> None:
        """Kill the server's process group (idempotent, synchronous: also for atexit)."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)

    async def aclose(self) -> None:
        self.kill()
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                await asyncio.wait_for(self.proc.wait(), 10)
        if self._session is not None:
            await self._session.close()
            self._session = None
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Revision:
    """A Knative revision: ``state`` Loading | Ready | Failed (Ready stays Ready when unloaded,
    as a revision scaled to zero does)."""

    name: str
    number: int
    digest: str
    model: str
    folder: Path
    state: str = "Loading"
    failure: str | None = None
    loaded: bool = False
    task: asyncio.Task[None] | None = None


@dataclass
class Route:
    """One entry of the Knative route's traffic, resolved to a revision."""

    tag: str | None
    revision: str
    percent: int
    latest: bool


@dataclass
class Service:
    """What the controller knows of one InferenceService (and of its Knative service)."""

    namespace: str
    name: str
    revisions: dict[str, Revision] = field(default_factory=dict)
    count: int = 0
    #: router port -> tag (None: the service URL)
    ports: dict[int, str | None] = field(default_factory=dict)
    sites: list[aiohttp.web.SockSite] = field(default_factory=list)
    traffic: list[Route] = field(default_factory=list)
    #: from the newest reconciled generation: spec.predictor.canaryTrafficPercent, the tag annotation
    canary: int | None = None
    tag_routing: bool = False
    observed: int = 0
    latest_created: str | None = None
    latest_ready: str | None = None
    rolled_out: str | None = None
    previous_rolled_out: str | None = None
    target: int = 0
    deleted: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def tag_url(self, tag: str | None) -> str | None:
        port = next((p for p, t in self.ports.items() if t == tag), None)
        return f"http://127.0.0.1:{port}" if port is not None else None

    def number(self, revision: str | None) -> int:
        return self.revisions[revision].number if revision in self.revisions else 0


class FakeKServeController:
    """The controller; declare ``INFERENCESERVICES`` (kind InferenceService, status subresource)."""

    resources = (INFERENCESERVICES,)

    def __init__(self, *, python: Path | None = None) -> None:
        self.server = ModelServer(python=python)
        #: seconds between a new generation and its reconciliation
        self.lag = 0.0
        #: (namespace, name) of services whose revisions stay loading while listed here
        self.hold: set[tuple[str, str]] = set()
        #: persistent volume claims: claim name -> local folder (``pvc://CLAIM/path``)
        self.pvcs: dict[str, str | Path] = {}
        #: generations reconciled (after ``lag``; a generation superseded meanwhile is not)
        self.reconciled = 0
        self.services: dict[tuple[str, str], Service] = {}
        self._runner: aiohttp.web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._forgetting: dict[tuple[str, str], asyncio.Future[None]] = {}

    # ---- for tests (thread-safe reads) ----------------------------------------------------------
    def revisions(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The service's revisions, oldest first: ``{name, digest, loaded, model, state}``."""
        svc = self.services.get((namespace, name))
        if svc is None:
            return []
        return [
            {"name": r.name, "digest": r.digest, "loaded": r.loaded, "model": r.model, "state": r.state}
            for r in list(svc.revisions.values())
        ]

    def url(self, namespace: str, name: str, tag: str | None = None) -> str | None:
        """The router URL of a service (or of its ``latest``/``prev`` tag); None if it has none."""
        svc = self.services.get((namespace, name))
        return svc.tag_url(tag) if svc is not None else None

    # ---- controller -----------------------------------------------------------------------------
    async def on_event(self, emulator: Any, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = (meta["namespace"], meta["name"])
        if event_type == "DELETED":
            svc = self.services.pop(key, None)
            if svc is not None:
                # a service made again under the same name waits for this (same model names)
                forgetting = self._forgetting[key] = asyncio.ensure_future(self._forget(svc))
                try:
                    await forgetting
                finally:
                    if self._forgetting.get(key) is forgetting:
                        del self._forgetting[key]
            return
        generation = int(meta.get("generation") or 1)
        observed = (obj.get("status") or {}).get("observedGeneration") or 0
        svc = self.services.get(key)
        if generation <= observed or (svc is not None and generation <= svc.target):
            return  # our own status writes, metadata-only changes, or a generation under way
        if svc is None:
            svc = self.services[key] = Service(*key)
        svc.target = generation
        self._spawn(self._reconcile(emulator, svc, generation))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _reconcile(self, emulator: Any, svc: Service, generation: int) -> None:
        """Generation ``generation`` as KServe + Knative take it: a new revision when the template
        differs from the latest created one's, the route written at once (before it is ready)."""
        if self.lag:
            await asyncio.sleep(self.lag)
        forgetting = self._forgetting.get((svc.namespace, svc.name))
        if forgetting is not None:
            await asyncio.shield(forgetting)
        async with svc.lock:
            obj = emulator.get_object(INFERENCESERVICES, svc.namespace, svc.name)
            if svc.deleted or svc.target != generation or obj is None:
                return  # a newer generation (or the deletion) supersedes this one
            if obj["metadata"].get("generation") != generation:
                return
            predictor = (obj.get("spec") or {}).get("predictor") or {}
            canary = predictor.get("canaryTrafficPercent")
            svc.canary = None if canary is None else int(canary)
            annotations = obj["metadata"].get("annotations") or {}
            svc.tag_routing = annotations.get(TAG_ROUTING_ANNOTATION) == "true"
            digest = template_digest(predictor)
            latest = svc.revisions.get(svc.latest_created or "")
            if latest is None or latest.digest != digest:
                svc.count += 1
                name = f"{svc.name}-predictor-{svc.count:05d}"
                model = f"{svc.namespace}-{svc.name}-{name}"
                rev = Revision(name, svc.count, digest, model, self.server.models / model)
                svc.revisions[name] = rev
                svc.latest_created = name
                rev.task = self._spawn(self._rollout(emulator, svc, rev, predictor))
            svc.observed = generation
            self.reconciled += 1
            await self._publish(emulator, svc)

    async def _rollout(self, emulator: Any, svc: Service, rev: Revision, predictor: dict[str, Any]) -> None:
        """Bring one revision up (Knative goes on with it even when a newer one is created)."""
        while (svc.namespace, svc.name) in self.hold and not svc.deleted:
            await asyncio.sleep(0.05)
        if svc.deleted:
            return
        try:
            await self._load(predictor, rev)
            rev.state = "Ready"
        except RevisionFailed as e:
            rev.state, rev.failure = "Failed", str(e)
        if svc.deleted:
            return  # _forget unloads it
        async with svc.lock:
            if svc.deleted:
                return
            # Knative: the newest ready revision newer than latestReadyRevision becomes it
            if rev.state == "Ready" and rev.number > svc.number(svc.latest_ready):
                svc.latest_ready = rev.name
            await self._publish(emulator, svc)

    async def _publish(self, emulator: Any, svc: Service) -> None:
        """Route traffic as KServe + Knative do now, unload what nothing names, write the status."""
        self._route_traffic(svc)
        if self._propagate(svc):  # the rolled-out revision moved: KServe writes the route again
            self._route_traffic(svc)
        await self._ensure_ports(svc)
        for route in svc.traffic:
            rev = svc.revisions[route.revision]
            if not rev.loaded:  # routed again after being scaled to zero: it comes back
                await self._activate(rev)
        named = {r.revision for r in svc.traffic}
        named |= {svc.latest_created, svc.latest_ready, svc.rolled_out}
        for rev in list(svc.revisions.values()):  # before the status: a test that sees it sees this
            if rev.name not in named and rev.loaded and rev.state == "Ready":
                await self._unload(rev)
        await self._set(emulator, svc, self._status(emulator, svc))

    def _route_traffic(self, svc: Service) -> None:
        """``svc.traffic`` from the ksvc traffic KServe writes (ksvc_reconciler.go), resolved as
        Knative resolves it: ``latestRevision: true`` is the latest READY revision."""
        latest_tag = "latest" if svc.tag_routing else None
        if svc.latest_ready is None:
            svc.traffic = []  # the route is not ready: nothing serves
        elif svc.canary is not None and svc.rolled_out is not None:
            svc.traffic = [Route(latest_tag, svc.latest_ready, svc.canary, True)]
            if svc.canary < 100:  # KServe tags the previous revision "prev" always
                svc.traffic.append(Route("prev", svc.rolled_out, 100 - svc.canary, False))
        else:
            svc.traffic = [Route(latest_tag, svc.latest_ready, 100, True)]

    @staticmethod
    def _propagate(svc: Service) -> bool:
        """KServe's PropagateStatus for the rolled-out revisions; True if they changed."""
        before = (svc.rolled_out, svc.previous_rolled_out)
        share: dict[str, int] = {}
        for route in svc.traffic:
            share[route.revision] = share.get(route.revision, 0) + route.percent
        for route in svc.traffic:
            if not (route.latest and route.revision == svc.latest_ready):
                continue
            if svc.rolled_out != svc.latest_ready:
                if route.percent == 100:  # the last revision that got all the traffic
                    svc.previous_rolled_out, svc.rolled_out = svc.rolled_out, svc.latest_ready
            elif (
                svc.latest_ready == svc.latest_created
                and route.percent < 100
                and share.get(route.revision) == 100
                and svc.previous_rolled_out
            ):
                # a canary share set on the rolled-out revision itself: KServe rolls back to the
                # previously rolled-out revision
                svc.rolled_out = svc.previous_rolled_out
        return (svc.rolled_out, svc.previous_rolled_out) != before

    async def _set(self, emulator: Any, svc: Service, status: dict[str, Any]) -> None:
        if not svc.deleted:
            await emulator.set_status(INFERENCESERVICES, svc.namespace, svc.name, status)

    # ---- the storage initializer and the model server --------------------------------------------
    async def _load(self, predictor: dict[str, Any], rev: Revision) -> None:
        model = predictor.get("model") or {}
        fmt = (model.get("modelFormat") or {}).get("name")
        if fmt != "sklearn":
            raise RevisionFailed(f"no ServingRuntime supports model format {fmt}")
        file = await self._download(model.get("storageUri"), rev.folder)
        await self.server.load(rev.model, rev.folder, file)
        rev.loaded = True

    async def _activate(self, rev: Revision) -> None:
        """Load a ready revision again from its copied files (as a revision scales up from zero)."""
        await self.server.start()
        with contextlib.suppress(aiohttp.ClientError):  # then it stays unloaded: the router says 503
            async with self.server.session().post(
                f"{self.server.url}/v2/repository/models/{rev.model}/load"
            ) as resp:
                rev.loaded = resp.status == 200

    async def _download(self, uri: str | None, dest: Path) -> Path:
        """Fetch ``uri`` into ``dest`` (a new folder); the model file's path there."""
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        try:
            if not uri:
                raise StorageError("spec.predictor.model.storageUri is not set")
            if uri.startswith(("http://", "https://")):
                return await self._fetch_http(uri, dest)
            if not uri.startswith("pvc://"):
                raise StorageError(f"unsupported storage scheme {uri.split('://')[0]}://")
            claim, _, sub = uri[len("pvc://") :].partition("/")
            if claim not in self.pvcs:
                raise StorageError(f'persistentvolumeclaim "{claim}" not found')
            source = Path(self.pvcs[claim]) / sub
            return await asyncio.to_thread(self._copy, source, dest)
        except StorageError as e:
            raise StorageError(f"storage-initializer: cannot download {uri}: {e}") from None

    @staticmethod
    def _copy(source: Path, dest: Path) -> Path:
        if source.is_dir():
            shutil.copytree(source, dest, dirs_exist_ok=True)
            return model_file(dest)
        if not source.is_file():
            raise StorageError(f"{source} does not exist")
        shutil.copy2(source, dest / source.name)
        return dest / source.name

    async def _fetch_http(self, uri: str, dest: Path) -> Path:
        target = dest / (uri.rstrip("/").rsplit("/", 1)[-1].split("?")[0] or "model.joblib")
        try:
            async with self.server.session().get(uri) as resp:
                if resp.status != 200:
                    raise StorageError(f"HTTP {resp.status}")
                target.write_bytes(await resp.read())
        except aiohttp.ClientError as e:
            raise StorageError(str(e) or type(e).__name__) from None
        return target

    async def _unload(self, rev: Revision) -> None:
        """Take the revision out of the model server (its files stay: it may be routed again)."""
        if rev.loaded:
            rev.loaded = False
            await self.server.unload(rev.model)

    async def _forget(self, svc: Service) -> None:
        svc.deleted = True
        async with svc.lock:  # a reconciliation under way finishes first (then sees ``deleted``)
            pass
        for rev in svc.revisions.values():
            if rev.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await rev.task  # a load under way ends first
        for rev in svc.revisions.values():
            await self._unload(rev)
            shutil.rmtree(rev.folder, ignore_errors=True)
        for site in svc.sites:
            with contextlib.suppress(RuntimeError):  # the runner closed at the session's end
                await site.stop()
        svc.sites.clear()
        svc.ports.clear()

    # ---- the status (one set_status each; null removes a key) ------------------------------------
    def _status(self, emulator: Any, svc: Service) -> dict[str, Any]:
        obj = emulator.get_object(INFERENCESERVICES, svc.namespace, svc.name) or {}
        created = svc.revisions[svc.latest_created or ""]
        serving = svc.latest_ready is not None
        if created.state == "Ready":
            updates = {c: ("True", None, None) for c in CONDITIONS}
            model_status: dict[str, Any] = {
                "transitionStatus": "UpToDate",
                "states": {"activeModelState": "Loaded", "targetModelState": "Loaded"},
                "copies": {"failedCopies": 0, "totalCopies": 1},
                "lastFailureInfo": None,
            }
        elif created.state == "Failed":
            why = created.failure or "the revision failed"
            updates = {c: ("False", "RevisionFailed", why) for c in NOT_READY}
            model_status = {
                "transitionStatus": "BlockedByFailedLoad",
                "states": {
                    "activeModelState": "Loaded" if serving else "FailedToLoad",
                    "targetModelState": "FailedToLoad",
                },
                "lastFailureInfo": {
                    "reason": "ModelLoadFailed",
                    "message": why,
                    "location": created.name,
                    "modelRevisionName": created.name,
                    "time": now_iso(),
                },
            }
        else:
            updates = {c: ("Unknown", "Loading", f"revision {created.name} is loading") for c in NOT_READY}
            model_status = {
                "transitionStatus": "InProgress",
                "states": {
                    "activeModelState": "Loaded" if serving else "Pending",
                    "targetModelState": "Loading",
                },
            }
        url = svc.tag_url(None) if serving else None
        traffic = []
        for route in svc.traffic:
            entry: dict[str, Any] = {"revisionName": route.revision, "percent": route.percent}
            entry["latestRevision"] = route.latest
            if route.tag is not None:
                entry.update(tag=route.tag, url=svc.tag_url(route.tag))
            traffic.append(entry)
        status: dict[str, Any] = {
            "observedGeneration": svc.observed,
            "conditions": merged_conditions((obj.get("status") or {}).get("conditions"), updates),
            "components": {
                "predictor": {
                    "latestCreatedRevision": created.name,
                    "latestReadyRevision": svc.latest_ready,
                    "latestRolledoutRevision": svc.rolled_out,
                    "previousRolledoutRevision": svc.previous_rolled_out,
                    "url": url,
                    "traffic": traffic or None,
                }
            },
            "modelStatus": model_status,
        }
        if url is not None:
            status.update(url=url, address={"url": url})
        return status

    # ---- the router -----------------------------------------------------------------------------
    async def _ensure_ports(self, svc: Service) -> None:
        """One listening loopback port per URL: the service's, and one per tag the route has."""
        if self._runner is None:
            app = aiohttp.web.Application()
            app.router.add_route("*", "/{path:.*}", self._route)
            self._runner = aiohttp.web.AppRunner(app, access_log=None)
            await self._runner.setup()
        for tag in (None, *(r.tag for r in svc.traffic if r.tag is not None)):
            if tag in svc.ports.values():
                continue
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            site = aiohttp.web.SockSite(self._runner, sock)
            await site.start()
            svc.ports[sock.getsockname()[1]] = tag
            svc.sites.append(site)

    def _pick(self, svc: Service, tag: str | None) -> Revision | None:
        if tag is None:
            entries = [(r.revision, r.percent) for r in svc.traffic if r.percent > 0]
        else:
            entries = [(r.revision, 1) for r in svc.traffic if r.tag == tag]
        if not entries:
            return None
        name = random.choices([r for r, _ in entries], weights=[p for _, p in entries])[0]
        return svc.revisions.get(name)

    async def _route(self, request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        port = sockname[1] if sockname else None
        svc = next((s for s in self.services.values() if port in s.ports and not s.deleted), None)
        if svc is None:
            return aiohttp.web.json_response({"error": "no such service"}, status=404)
        prefix = f"/v2/models/{svc.name}"
        path = request.path
        if path != prefix and not path.startswith(prefix + "/"):
            asked = path.split("/")[3] if path.startswith("/v2/models/") else path
            return aiohttp.web.json_response({"error": f"Model {asked} not found"}, status=404)
        tag = svc.ports[port]
        if tag is not None and all(r.tag != tag for r in svc.traffic):
            return aiohttp.web.json_response({"error": f"no route for the tag {tag}"}, status=404)
        rev = self._pick(svc, tag)
        if rev is None or not rev.loaded:
            return aiohttp.web.json_response({"error": f"no revision of {svc.name} serves here"}, status=503)
        upstream = f"{self.server.url}/v2/models/{rev.model}{path[len(prefix) :]}"
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")}
        async with self.server.session().request(
            request.method, upstream, params=request.query, data=await request.read(), headers=headers
        ) as resp:
            body = await resp.read()
            content_type = resp.headers.get("Content-Type", "application/octet-stream")
            status = resp.status
        if content_type.startswith("application/json"):
            with contextlib.suppress(ValueError):
                doc = json.loads(body)
                if isinstance(doc, dict):
                    for k in ("model_name", "name"):
                        if doc.get(k) == rev.model:
                            doc[k] = svc.name
                    body = json.dumps(doc).encode()
        return aiohttp.web.Response(
            body=body, status=status, headers={"Content-Type": content_type, REVISION_HEADER: rev.name}
        )

    async def aclose(self) -> None:
        """Stop the work under way, close the router and kill the model server."""
        for task in list(self._tasks):
            task.cancel()
        for svc in self.services.values():
            svc.deleted = True
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.server.aclose()
