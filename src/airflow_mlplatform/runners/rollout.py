"""Roll a model version out to a KServe InferenceService: :class:`Rollout`.

A deployment is meant to stay, so it is not a job of the per-try lifecycle (create, wait,
delete): its object has the name the user gave, and a rollout patches it. What it shares with
every Kubernetes kind: the kind's description (:data:`~airflow_mlplatform.specs.inference.INFERENCESERVICE_KIND`),
the hook, the deadline rule (:func:`~airflow_mlplatform.runners.kube_job.job_deadline`), the
one trigger (:class:`~airflow_mlplatform.triggers.kubernetes.KubeJobTrigger`) and the one stop
rule (:func:`~airflow_mlplatform.runners.kube_job.stop_object`, which restores the previous
predictor instead of deleting).

The protocol, in API requests (at most 6 for a canary rollout, 4 without, however long it takes;
a 409 from a concurrent write adds a read and a write)::

    GET       the InferenceService (404: first rollout)
    nothing   when it already serves this predictor (same digest, phase done): re-run = no-op
    POST      first rollout, or PATCH spec.predictor + the rollout annotation (resourceVersion-guarded)
              -- or nothing when an earlier try's rollout of the same predictor is still going (re-attach)
    WATCH     until Ready, observedGeneration >= generation and the latest created revision is the
              ready one, or FailedToLoad (startup_timeout)
    [canary]  smoke test the new revision through its ``latest`` tag URL (and the previous one,
              ``prev``, for the gate), PATCH canaryTrafficPercent away (promote), WATCH again
    PATCH     the rollout's phase to done (resourceVersion-guarded)

A smoke test without a canary share goes through a 0% canary (a dark launch): the new revision
answers the smoke test before it takes any traffic. A failed rollout (FailedToLoad, not ready
within ``startup_timeout``, a failed smoke test or gate, an error or timeout of the task)
restores the previous predictor, pinned at 100% while its new revision starts
(:func:`~airflow_mlplatform.specs.inference.stop_rollout`), and fails with the reason; a first
rollout that never served is deleted. A kill does the same.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_mlplatform.exceptions import (
    ConfigurationError,
    DeploymentFailedError,
    KubernetesConflictError,
    KubernetesNotFoundError,
    KubernetesResourceTypeNotFoundError,
    KubernetesTimeoutError,
)
from airflow_mlplatform.specs import inference as isvc
from airflow_mlplatform.specs.inference import INFERENCESERVICE_KIND as KIND


@dataclass
class RolloutResult:
    """How a rollout ended (the operator's XCom and record).

    :param name: the InferenceService.
    :param namespace: its namespace.
    :param url: its endpoint (``status.url``).
    :param revision: the revision serving the model now.
    :param model: what it serves (``churn/3`` or the storage URI).
    :param changed: False when it already served this predictor (nothing was written).
    :param reattached: an earlier try's rollout of the same predictor was waited for.
    :param canary: the canary share the rollout went through (None: none).
    :param previous_model: what served before.
    :param smoke: the smoke test of the new revision (metrics), if any.
    :param gate: the canary gate's verdict, if any.
    :param api_requests: Kubernetes API requests this rollout made (the benchmark's figure).
    """

    name: str
    namespace: str
    url: str | None
    revision: str | None
    model: str
    changed: bool
    reattached: bool = False
    canary: int | None = None
    previous_model: str | None = None
    smoke: dict[str, Any] | None = None
    gate: str | None = None
    api_requests: int = 0
    metrics: dict[str, float] = field(default_factory=dict)


class Rollout:
    """One rollout of a predictor to an InferenceService (see the module doc).

    :param name: the InferenceService's name.
    :param namespace: its namespace.
    :param predictor: ``spec.predictor`` wanted (:func:`~airflow_mlplatform.specs.inference.build_predictor`).
    :param model: what it serves, for the annotation and messages (``churn/3``).
    :param by: the task try that rolls out (``dag/task/run/try``).
    :param labels: labels of the object (tenant, model and version).
    :param annotations: more annotations of the object (the task identity).
    :param kubernetes_conn_id: the Kubernetes connection.
    :param hook: an ``MLPlatformKubernetesHook`` (default: one for ``kubernetes_conn_id``).
    :param log: the task's logger.
    :param startup_timeout: seconds the new revision may take to become ready (each wait).
    :param deadline: UNIX time when the rollout must be over (:func:`job_deadline`).
    :param smoke_request: a v2 inference request sent to the new revision before it takes all
        traffic (None: no smoke test).
    :param smoke_count: how many times it is sent.
    :param canary_gate: a parsed gate (:mod:`airflow_mlplatform.models.gate`, alias ``prev``)
        over the smoke test's metrics of the new and the previous revision.
    :param serving_conn_id: an HTTP connection for the smoke test (ingress host, token).
    """

    def __init__(
        self,
        *,
        name: str,
        namespace: str,
        predictor: Mapping[str, Any],
        model: str,
        by: str,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        hook: Any = None,
        log: Any = None,
        startup_timeout: float = 600.0,
        deadline: float | None = None,
        smoke_request: Mapping[str, Any] | None = None,
        smoke_count: int = 3,
        canary_gate: Any = None,
        serving_conn_id: str | None = None,
    ) -> None:
        from airflow_mlplatform.runners.kube_job import NO_LIMIT

        self.name = name
        self.namespace = namespace
        self.predictor = dict(predictor)
        #: the share the user asked for (None: none); a smoke test alone runs behind a 0% canary
        self.requested_canary = self.predictor.get("canaryTrafficPercent")
        if self.requested_canary is None and smoke_request is not None:
            self.predictor["canaryTrafficPercent"] = 0
        self.digest = isvc.predictor_digest(self.predictor)
        self.canary = self.predictor.get("canaryTrafficPercent")
        self.model = model
        self.by = by
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        self.kubernetes_conn_id = kubernetes_conn_id
        self._hook = hook
        self.log = log or logging.getLogger(__name__)
        self.startup_timeout = float(startup_timeout)
        self.deadline = deadline if deadline is not None else time.time() + NO_LIMIT
        self.smoke_request = dict(smoke_request) if smoke_request is not None else None
        self.smoke_count = smoke_count
        self.canary_gate = canary_gate
        self.serving_conn_id = serving_conn_id
        self.previous_model: str | None = None
        self._previous_digest: str | None = None
        self.reattached = False
        self.changed = True
        self.requests = 0
        self._lock = threading.RLock()
        self._written = False
        self._finished = False
        self._killed = False

    @property
    def what(self) -> str:
        return f"InferenceService {self.name} in namespace {self.namespace}"

    def hook(self) -> Any:
        """The sync hook (created once)."""
        if self._hook is None:
            from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook

            self._hook = MLPlatformKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)
        return self._hook

    def _api(self, method: str, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        return getattr(self.hook(), method)(*args, **kwargs)

    def _get(self) -> dict[str, Any]:
        return self._api("get_object", isvc.RESOURCE, self.namespace, self.name)

    def _remaining(self, cap: float) -> float:
        """Seconds a wait may take: ``cap``, within the deadline (at least 1)."""
        return max(1.0, min(cap, self.deadline - time.time()))

    def _rollout_state(
        self, current: Mapping[str, Any] | None, previous: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return isvc.rollout_state(
            digest=self.digest,
            model=self.model,
            phase="rolling-out",
            previous=previous,
            previous_digest=self._previous_digest,
            previous_model=self.previous_model,
            by=self.by,
            rolled_before=isvc.predictor_status(current or {}).get("latestRolledoutRevision"),
            previous_labels=isvc.managed_labels(current or {}),
        )

    # ---- write --------------------------------------------------------------------------------
    def start(self) -> dict[str, Any]:
        """Read the object and write the rollout (create, patch, or nothing); returns it as written."""
        with self._lock:
            if self._killed:
                raise DeploymentFailedError(f"the task was killed before {self.what} was rolled out")
        try:
            current = self._get()
        except KubernetesNotFoundError:
            current = None
        except KubernetesResourceTypeNotFoundError as e:
            raise ConfigurationError(
                f"the cluster has no InferenceService resource ({isvc.API_VERSION}): {KIND.crd_hint} ({e})"
            ) from e
        if current is None:
            return self._create()
        return self._update(current)

    def _create(self) -> dict[str, Any]:
        # a first rollout has nothing to split traffic with: the canary share is not written
        predictor = {k: v for k, v in self.predictor.items() if k != "canaryTrafficPercent"}
        self.digest = isvc.predictor_digest(predictor)
        self.canary = None
        manifest = isvc.build_inferenceservice(
            name=self.name,
            namespace=self.namespace,
            predictor=predictor,
            rollout=self._rollout_state(None, None),
            labels=self.labels,
            annotations=self.annotations,
        )
        with self._lock:
            self._written = True
        try:
            obj = self._api("create_object", isvc.RESOURCE, self.namespace, manifest)
        except KubernetesConflictError:  # created meanwhile (another task): roll out over it
            return self._update(self._get())
        self.log.info("Created %s serving %s", self.what, self.model)
        self._after_write()
        return obj

    def _update(self, current: dict[str, Any], *, attempt: int = 1) -> dict[str, Any]:
        state = isvc.read_rollout(current)
        if state.get("digest") == self.digest and state.get("phase") == "done":
            self.changed = False
            self.previous_model = state.get("previous_model")
            self.log.info("%s already serves %s: nothing to change", self.what, self.model)
            return current
        if state.get("digest") == self.digest and state.get("phase") in isvc.ACTIVE_PHASES:
            self.reattached = True
            self.previous_model = state.get("previous_model")
            self._previous_digest = state.get("previous_digest")
            with self._lock:
                self._written = True
            self.log.info(
                "Re-attaching to the rollout of %s to %s (%s)", self.what, self.model, state.get("by")
            )
            return current
        previous: Mapping[str, Any] | None = (current.get("spec") or {}).get("predictor") or {}
        if state.get("phase") in isvc.ACTIVE_PHASES:
            # another rollout was cut short (its task died): a failure goes back to what that one
            # replaced (nothing, for a first rollout: then it is deleted)
            previous = state.get("previous")
            self.previous_model = state.get("previous_model")
            self._previous_digest = state.get("previous_digest")
            self.log.warning("%s: an unfinished rollout of %s is replaced", self.what, state.get("model"))
        else:
            self.previous_model = state.get("model")
            self._previous_digest = state.get("digest") or isvc.predictor_digest(previous or {})
        patch = isvc.predictor_patch(current, self.predictor, self._rollout_state(current, previous))
        if self.labels:
            patch["metadata"]["labels"] = dict(self.labels)
        with self._lock:
            self._written = True
        try:
            obj = self._api("patch_object", isvc.RESOURCE, self.namespace, self.name, patch)
        except KubernetesConflictError as e:  # changed between our read and write: decide again
            fresh = self._get()
            if attempt >= 3:
                other = isvc.read_rollout(fresh).get("by") or "another writer"
                raise DeploymentFailedError(
                    f"{self.what} kept changing while it was being rolled out to {self.model} (last by "
                    f"{other}); nothing of this rollout was written: run it again once the other is done"
                ) from e
            return self._update(fresh, attempt=attempt + 1)
        share = f", {self.canary}% canary" if self.canary is not None else ""
        self.log.info("Rolling %s out to %s (was %s%s)", self.what, self.model, self.previous_model, share)
        self._after_write()
        return obj

    def _after_write(self) -> None:
        """A kill that came during the write: stop now that the object exists."""
        with self._lock:
            killed = self._killed
        if killed:
            self.kill()
            raise DeploymentFailedError(f"the task was killed while {self.what} was being rolled out")

    def _guarded(self, obj: Mapping[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
        """Write ``patch`` (computed from ``obj``, resourceVersion-guarded); on a 409, read again:
        if the rollout is still this one, write once more, else it was stopped or replaced."""
        for retry in (False, True):
            with self._lock:
                if self._killed:
                    raise self._not_ours(obj)
            try:
                return self._api("patch_object", isvc.RESOURCE, self.namespace, self.name, patch)
            except KubernetesConflictError:
                obj = self._get()
                if retry or not self._ours(obj):
                    raise self._not_ours(obj) from None
                rv = obj["metadata"].get("resourceVersion")
                patch = {**patch, "metadata": {**patch["metadata"], "resourceVersion": rv}}
        raise AssertionError("unreachable")  # pragma: no cover

    # ---- wait ---------------------------------------------------------------------------------
    def _ours(self, obj: Mapping[str, Any]) -> bool:
        """The object still carries this rollout (not rolled back by a kill, not replaced)."""
        model = ((obj.get("spec") or {}).get("predictor") or {}).get("model") or {}
        wanted = self.predictor.get("model") or {}
        return isvc.read_rollout(obj).get("digest") == self.digest and model.get("storageUri") == wanted.get(
            "storageUri"
        )

    def _settled(self, obj: Mapping[str, Any]) -> bool:
        return KIND.is_done(obj) or not self._ours(obj)

    def _not_ours(self, obj: Mapping[str, Any]) -> DeploymentFailedError:
        now = isvc.read_rollout(obj)
        with self._lock:
            killed = self._killed
        if killed:
            return DeploymentFailedError(
                f"The rollout of {self.model} to {self.what} was stopped: the task was killed, and "
                f"{now.get('model') or 'the previous predictor'} was restored (rolled back)"
            )
        return DeploymentFailedError(
            f"The rollout of {self.model} to {self.what} was replaced while it waited: it now rolls out "
            f"{now.get('model')} ({now.get('phase')}, by {now.get('by')})"
        )

    def wait_ready(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Wait until the current spec is ready or failed for good (``startup_timeout``), or the
        rollout is no longer this one (a kill restored the previous predictor meanwhile)."""
        if self._settled(obj):
            return obj
        timeout = self._remaining(self.startup_timeout)
        try:
            self.requests += 1
            return self.hook().wait_for_object(
                isvc.RESOURCE,
                self.namespace,
                self.name,
                self._settled,
                timeout=timeout,
                resource_version=(obj.get("metadata") or {}).get("resourceVersion"),
                initial=obj,
            )
        except KubernetesTimeoutError as e:
            latest = None
            with contextlib.suppress(Exception):
                latest = self._get()
            state = KIND.describe_state(latest) if latest is not None else "unknown"
            raise self._rolled_back(
                latest,
                f"the new revision did not become ready within {timeout:.0f} s (startup_timeout); its state "
                f"is {state}: check its pods (kubectl describe pods -n {self.namespace} -l "
                f"{isvc.ISVC_POD_LABEL}={self.name}); with no pods at all, check the Knative service "
                f"(kubectl describe ksvc -n {self.namespace} {self.name}-predictor): Knative refuses "
                "nodeSelector, tolerations, affinity and priorityClassName unless its config-features "
                "enable kubernetes.podspec-nodeselector, -tolerations, -affinity and -priorityclassname",
            ) from e

    # ---- finish -------------------------------------------------------------------------------
    def finish(self, obj: dict[str, Any]) -> RolloutResult:
        """The new revision is ready or failed: smoke test, gate, promote or roll back; phase done."""
        if not self._ours(obj):
            raise self._not_ours(obj)
        state = KIND.state(obj)
        if state != "Ready":
            raise self._rolled_back(obj, f"{state}: {KIND.message(obj) or 'no reason given'}")
        if not self.changed:
            self._finished = True
            return self._result(obj)
        smoke: Any = None
        gate_verdict: str | None = None
        phase = isvc.read_rollout(obj).get("phase")
        # the share as written (a first rollout has none), whichever process wrote it
        written = ((obj.get("spec") or {}).get("predictor") or {}).get("canaryTrafficPercent")
        if phase != "promoting" and self.smoke_request is not None:
            if written is not None:
                url = isvc.tag_url(obj, "latest")
                if not url:
                    raise self._rolled_back(
                        obj,
                        "the InferenceService publishes no 'latest' tag URL to smoke test the new revision "
                        f"alone: KServe adds one with the annotation {isvc.TAG_ROUTING_ANNOTATION}: 'true' "
                        "(written by this operator; is it removed by a webhook or policy?)",
                    )
            else:
                url = isvc.endpoint(obj)  # a first rollout: it has all the traffic already
            smoke = self._smoke(url)
            if not smoke.ok:
                raise self._rolled_back(
                    obj,
                    f"the smoke test of the new revision failed ({smoke.errors}/{smoke.requests}): {smoke.message}",
                )
            if written is not None and self.canary_gate is not None:  # against the previous revision
                gate_verdict = self._gate(obj, smoke)
        if written is not None:
            obj = self._promote(obj)
        done = self._guarded(obj, isvc.phase_patch(obj, "done"))
        self._finished = True
        self.log.info(
            "%s serves %s (revision %s) at %s",
            self.what,
            self.model,
            isvc.revision(done),
            isvc.endpoint(done),
        )
        result = self._result(done)
        result.canary = self.requested_canary if (written is not None or phase == "promoting") else None
        result.gate = gate_verdict
        if smoke is not None:
            result.smoke = {
                "url": smoke.url,
                "requests": smoke.requests,
                "revision": isvc.revision(done),
                "outputs": smoke.outputs,
            }
            result.metrics = {f"smoke_{k}": v for k, v in smoke.metrics().items()}
        return result

    def _smoke(self, url: str | None) -> Any:
        from airflow_mlplatform.hooks.serving import InferenceClient, smoke_test

        if not url:
            raise self._rolled_back(None, "the InferenceService reports no URL to smoke test")
        client = InferenceClient(url=url, model=self.name, serving_conn_id=self.serving_conn_id)
        assert self.smoke_request is not None
        result = smoke_test(client, self.smoke_request, count=self.smoke_count)
        self.log.info(
            "Smoke test of %s: %d/%d good, median %s ms",
            url,
            result.requests - result.errors,
            result.requests,
            result.latency_ms,
        )
        return result

    def _gate(self, obj: dict[str, Any], smoke: Any) -> str | None:
        """The canary gate over the new revision's and the previous one's smoke metrics."""
        from airflow_mlplatform.exceptions import ModelGateError

        previous: dict[str, float] = {}
        prev_url = isvc.tag_url(obj, "prev")
        if prev_url and self.smoke_request is not None:
            previous = self._smoke(prev_url).metrics()
        try:
            passed = self.canary_gate.evaluate(smoke.metrics(), previous)
        except ModelGateError as e:
            raise self._rolled_back(obj, f"the canary gate could not be evaluated: {e}") from e
        values = ", ".join(f"{k}={v}" for k, v in sorted(smoke.metrics().items()))
        held = ", ".join(f"prev.{k}={v}" for k, v in sorted(previous.items()))
        verdict = f"{self.canary_gate.text} with {values}{'; ' + held if held else ''}"
        if not passed:
            raise self._rolled_back(obj, f"the canary gate failed: {verdict}")
        self.log.info("Canary gate passed: %s", verdict)
        return verdict

    def _promote(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Give the new revision all traffic (the canary share removed) and wait until it serves."""
        patch = isvc.phase_patch(obj, "promoting")
        patch["spec"] = {"predictor": {"canaryTrafficPercent": None}}
        promoted = self._guarded(obj, patch)
        self.log.info("Promoting revision %s of %s to 100%% of the traffic", isvc.revision(obj), self.what)
        ready = self.wait_ready(promoted)
        if not self._ours(ready):
            raise self._not_ours(ready)
        if KIND.state(ready) != "Ready":
            raise self._rolled_back(ready, f"promotion failed: {KIND.describe_state(ready)}")
        return ready

    def _result(self, obj: Mapping[str, Any]) -> RolloutResult:
        return RolloutResult(
            name=self.name,
            namespace=self.namespace,
            url=isvc.endpoint(obj),
            revision=isvc.revision(obj),
            model=self.model,
            changed=self.changed,
            reattached=self.reattached,
            canary=self.requested_canary,
            previous_model=self.previous_model,
            api_requests=self.requests,
        )

    # ---- roll back ----------------------------------------------------------------------------
    def _rolled_back(self, obj: Mapping[str, Any] | None, reason: str) -> DeploymentFailedError:
        """Restore the previous predictor (or delete a first rollout); the error to raise."""
        from airflow_mlplatform.runners.kube_job import stop_object

        what = f"Rolling out {self.model} to {self.what} failed: {reason}."
        self._finished = True
        try:
            done = stop_object(self.hook(), KIND, self.namespace, self.name)
        except Exception as e:
            return DeploymentFailedError(
                f"{what} Rolling back failed too ({e}): restore it by hand (kubectl edit -n {self.namespace} "
                f"inferenceservices/{self.name})"
            )
        self.requests += 2
        if done == "deleted":
            return DeploymentFailedError(f"{what} It never served, so it was deleted.")
        if done != "restored":
            return DeploymentFailedError(what)
        back = self._wait_restored()
        return DeploymentFailedError(f"{what} Rolled back: {back}")

    def _wait_restored(self) -> str:
        """After a rollback: wait (bounded, within the deadline) until the restored predictor serves."""
        previous = self.previous_model or "the previous predictor"
        try:
            obj = self.hook().wait_for_object(
                isvc.RESOURCE,
                self.namespace,
                self.name,
                KIND.is_done,
                timeout=self._remaining(min(self.startup_timeout, 300.0)),
            )
        except Exception as e:
            return f"{previous} is restored but not ready yet ({type(e).__name__}); check it"
        self.requests += 1
        if KIND.state(obj) == "Ready":
            return f"{previous} serves again (revision {isvc.revision(obj)})"
        return f"{previous} is restored but {KIND.describe_state(obj)}"

    def kill(self) -> None:
        """Stop the rollout from any thread (``on_kill``): restore the previous predictor (or delete
        a first rollout); nothing when nothing was written yet or the rollout is done."""
        from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook
        from airflow_mlplatform.runners.kube_job import stop_object

        with self._lock:
            self._killed = True
            written = self._written
        if not written:
            return
        hook = MLPlatformKubernetesHook(
            kubernetes_conn_id=self.kubernetes_conn_id, retry_policy=getattr(self._hook, "retry_policy", None)
        )
        try:
            done = stop_object(hook, KIND, self.namespace, self.name)
        except Exception as e:
            self.log.error(
                "Could not stop the rollout of %s (%s): check it (kubectl get -n %s isvc/%s)",
                self.what,
                e,
                self.namespace,
                self.name,
            )
            return
        outcome = {"restored": "the previous predictor is restored", "deleted": "deleted (it never served)"}
        self.log.info("Stopped the rollout of %s: %s", self.what, outcome.get(done, done))

    def _stopping(self, step: Any) -> RolloutResult:
        """Run ``step``; an error or timeout that is not a rollout failure (an unreachable API, the
        task's ``execution_timeout``) stops the rollout before it propagates."""
        try:
            return step()
        except DeploymentFailedError:
            raise
        except BaseException:
            with self._lock:
                stop = self._written and not self._finished
            if stop:
                self.log.warning("The rollout of %s did not finish: stopping it", self.what)
                self.kill()
            raise

    # ---- all in one, or deferred ----------------------------------------------------------------
    def run(self) -> RolloutResult:
        """The whole rollout in this process."""
        return self._stopping(lambda: self.finish(self.wait_ready(self.start())))

    def trigger(self, obj: Mapping[str, Any]) -> Any:
        """The lifecycle's trigger, waiting in the triggerer until the new revision is ready."""
        from airflow_mlplatform.triggers.kubernetes import KubeJobTrigger

        return KubeJobTrigger(
            kind=KIND.ref,
            name=self.name,
            namespace=self.namespace,
            kubernetes_conn_id=self.kubernetes_conn_id,
            resource_version=(obj.get("metadata") or {}).get("resourceVersion"),
            state=KIND.state(obj) if KIND.is_done(obj) else None,
            startup_timeout=self.startup_timeout,
            deadline=self.deadline,
            stream_log=False,
        )

    def complete(self, event: Mapping[str, Any]) -> RolloutResult:
        """After the trigger fired: read the object once and finish (or report the rollback the
        triggerer made).

        :param event: the trigger's event.
        """
        with self._lock:
            self._written = True
        obj = self._get()
        state = isvc.read_rollout(obj)
        ours = state.get("digest") == self.digest
        self.previous_model = state.get("previous_model") if ours else state.get("model")
        self._previous_digest = state.get("previous_digest")
        if event.get("status") != "done":
            message = str(event.get("message") or event.get("status"))
            if state.get("phase") in isvc.ACTIVE_PHASES:
                raise self._rolled_back(obj, message)
            self._finished = True
            raise DeploymentFailedError(
                f"Rolling out {self.model} to {self.what} failed: {message}. Rolled back: {self._wait_restored()}"
            )
        return self._stopping(lambda: self.finish(obj))
