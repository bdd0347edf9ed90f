"""Run one command in a Kubernetes pod built from a compute profile.

Any operator that runs a job in a pod composes this runner (NotebookOperator, RStudioJobOperator,
MLPlatformPodOperator)::

    runner = PodJobRunner(profile=profile, command=["python", "train.py"], env={...},
                          kubernetes_conn_id=self.kubernetes_conn_id, log=self.log)
    # synchronous: blocks until the pod ends; logs stream into the task log
    result = runner.run(context)
    # deferrable: find-or-create the pod, then defer to PodJobTrigger (raises TaskDeferred) ...
    runner.defer(self, context, method_name="execute_complete")
    # ... and in execute_complete(context, event): read the log once, parse, delete per policy
    result = runner.complete(context, event)
    result.raise_for_status()                # JobFailedError with the log's tail on a non-zero exit
    result.outputs.values, result.outputs.metrics, result.exit_code, result.pod_name
    # on_kill: runner.kill()                 # deletes the pod (thread-safe)

Lifecycle guarantees: the pod carries the task identity as labels; a new try (or a restarted
worker) re-attaches to a Pending/Running/Succeeded pod of the same task instead of starting a second
one, unless that pod's results were already read (annotation ``CONSUMED_ANNOTATION``: a cleared
task runs again); on kill, timeout or any error the pod is deleted (the fake kubelet's process is
gone with it); after a normal end ``delete_policy`` decides (``always``, ``on_success``,
``never``); a kept pod is marked consumed with one merge patch (instead of the delete). Requests
per job: sync 6 (list, create, watch, log, watch, delete), deferrable 6 (list, create, 2 watches
in the trigger: started, done; log, delete), however long the job runs, plus a reconnect per
dropped watch or cut log stream (and a get of the pod per cut log stream).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_mlplatform.compute import ComputeProfile
from airflow_mlplatform.exceptions import (
    ConfigurationError,
    JobFailedError,
    KubernetesNotFoundError,
    KubernetesTimeoutError,
)
from airflow_mlplatform.runners.pod_log import stream_pod_log_lines
from airflow_mlplatform.specs import pod as podspec
from airflow_mlplatform.values import JobOutputs, StreamParser

DELETE_POLICIES = ("always", "on_success", "never")
TERMINAL = ("Succeeded", "Failed")
#: Set ("true") on a kept pod once its results were read: no later try adopts it.
CONSUMED_ANNOTATION = podspec.label_key("consumed")
#: Waiting reasons that will not fix themselves: the job fails at once instead of at the deadline.
STUCK_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
    }
)


def phase(pod: Mapping[str, Any]) -> str:
    """The pod's phase (``Pending`` when not set yet)."""
    return str((pod.get("status") or {}).get("phase") or "Pending")


def container_state(pod: Mapping[str, Any], container: str = podspec.CONTAINER_NAME) -> dict[str, Any]:
    """The job container's ``state`` (``{"running": ...}``, ``{"terminated": ...}``...)."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container:
            return dict(status.get("state") or {})
    return {}


def stuck_reason(pod: Mapping[str, Any]) -> str | None:
    """A waiting reason that will not resolve by itself (bad image, bad config), or None."""
    waiting = container_state(pod).get("waiting") or {}
    reason = waiting.get("reason")
    return f"{reason}: {waiting.get('message', '')}".strip(": ") if reason in STUCK_REASONS else None


def exit_code(pod: Mapping[str, Any]) -> int | None:
    """The job container's exit code, once it terminated."""
    terminated = container_state(pod).get("terminated") or {}
    code = terminated.get("exitCode")
    return int(code) if code is not None else None


def is_started(pod: Mapping[str, Any]) -> bool:
    """Running or finished (its log can be read), or stuck for good."""
    return phase(pod) != "Pending" or bool(container_state(pod).get("running")) or bool(stuck_reason(pod))


def is_done(pod: Mapping[str, Any]) -> bool:
    """Succeeded or Failed, or stuck for good."""
    return phase(pod) in TERMINAL or bool(stuck_reason(pod))


def is_consumed(pod: Mapping[str, Any]) -> bool:
    """A task already read this pod's results (it was kept by ``delete_policy``)."""
    return ((pod.get("metadata") or {}).get("annotations") or {}).get(CONSUMED_ANNOTATION) == "true"


@dataclass
class PodResult:
    """How a pod job ended.

    :param pod_name: the pod's name.
    :param namespace: its namespace.
    :param phase: final phase (``Succeeded``/``Failed``).
    :param exit_code: the job container's exit code (None if it never ran).
    :param outputs: recorded values and metric rows read from its stdout.
    :param reattached: True if an existing pod was adopted instead of created.
    :param reason: why it failed without an exit code (stuck, deleted...).
    :param log_tail: the last lines of its output, for error messages.
    """

    pod_name: str
    namespace: str
    phase: str
    exit_code: int | None
    outputs: JobOutputs = field(default_factory=JobOutputs)
    reattached: bool = False
    reason: str | None = None
    log_tail: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.phase == "Succeeded" and self.exit_code in (0, None)

    def raise_for_status(self) -> None:
        """Raise JobFailedError (with the log's tail) unless the job succeeded."""
        if self.succeeded:
            return
        tail = "\n".join(self.log_tail[-20:])
        why = f"exit code {self.exit_code}" if self.exit_code is not None else (self.reason or self.phase)
        raise JobFailedError(
            f"pod {self.pod_name!r} in namespace {self.namespace!r} failed ({why}). "
            f"Last lines of its output:\n{tail}"
            if tail
            else f"pod {self.pod_name!r} failed ({why})"
        )


class _LogFeed:
    """Task log + StreamParser + tail, fed line by line (text without timestamps).

    Resuming a cut stream (skipping the lines seen) is the follower's job: ``runners.pod_log``.
    """

    def __init__(self, log: logging.Logger | Any, tail: int = 50) -> None:
        self.log = log
        self.parser = StreamParser()
        self.tail: list[str] = []
        self._tail_len = tail

    def line(self, text: str) -> None:
        self.log.info("[pod] %s", text)
        self.parser.feed_line(text)
        self.tail.append(text)
        if len(self.tail) > self._tail_len:
            del self.tail[0]


class PodJobRunner:
    """Runs one command in a pod built from ``profile``.

    :param profile: a kubernetes compute profile.
    :param command: the container's command.
    :param args: the container's args.
    :param env: environment variables of the job (win over the profile's).
    :param kubernetes_conn_id: the Kubernetes connection.
    :param namespace: overrides the profile's namespace (else the connection's, else ``default``).
    :param name_prefix: prefix of the pod name.
    :param delete_policy: after a normal end: ``always``, ``on_success`` (keep failed pods) or ``never``.
    :param startup_timeout: seconds the pod may stay Pending.
    :param timeout: seconds the whole job may take (None: no limit besides execution_timeout).
    :param labels: extra pod labels.
    :param annotations: extra pod annotations.
    :param working_dir: the container's working directory.
    :param log: logger for the job's output (the operator's ``self.log``).
    """

    def __init__(
        self,
        *,
        profile: ComputeProfile,
        command: Sequence[str],
        args: Sequence[str] | None = None,
        env: Mapping[str, Any] | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        namespace: str | None = None,
        name_prefix: str = "mlp",
        delete_policy: str = "always",
        startup_timeout: float = 600,
        timeout: float | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        working_dir: str | None = None,
        log: Any = None,
    ) -> None:
        if not profile.is_kubernetes:
            raise ConfigurationError(
                f"compute profile {profile.name!r} has backend {profile.backend!r}; a pod needs backend kubernetes"
            )
        if delete_policy not in DELETE_POLICIES:
            raise ConfigurationError(
                f"delete_policy {delete_policy!r} is unknown; use one of {', '.join(DELETE_POLICIES)}"
            )
        self.profile = profile
        self.command = list(command)
        self.args = list(args or [])
        self.env = dict(env or {})
        self.kubernetes_conn_id = kubernetes_conn_id
        self.namespace = namespace
        self.name_prefix = name_prefix
        self.delete_policy = delete_policy
        self.startup_timeout = startup_timeout
        self.timeout = timeout
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        self.working_dir = working_dir
        self.log = log or logging.getLogger(__name__)
        self.pod_name: str | None = None
        self.pod_namespace: str | None = None
        self._lock = threading.Lock()
        self._hook: Any = None

    # ---- pieces -------------------------------------------------------------------------------
    def hook(self) -> Any:
        """The sync hook (created once)."""
        if self._hook is None:
            from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook

            self._hook = MLPlatformKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)
        return self._hook

    def resolve_namespace(self) -> str:
        if self.namespace or self.profile.namespace:
            return str(self.namespace or self.profile.namespace)
        try:
            return self.hook().get_namespace() or "default"
        except Exception:
            return "default"

    def manifest(self, identity: Mapping[str, Any], namespace: str) -> dict[str, Any]:
        """The pod manifest for the task try ``identity`` (pure).

        :param identity: dag_id, task_id, run_id, map_index, try_number.
        :param namespace: the namespace.
        """
        return podspec.build_pod(
            self.profile,
            name=podspec.pod_name(identity, self.name_prefix),
            command=self.command,
            args=self.args,
            env=self.env,
            labels={**self.labels, **podspec.identity_labels(identity)},
            annotations={**self.annotations, **podspec.identity_annotations(identity)},
            namespace=namespace,
            working_dir=self.working_dir,
        )

    def start(self, context: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Find this task's live pod (any try) or create one; returns ``(pod, reattached)``.

        :param context: the task's Airflow context.
        """
        from airflow_mlplatform.execution_record import task_identity
        from airflow_mlplatform.hooks.kubernetes import PODS

        identity = task_identity(context)
        namespace = self.resolve_namespace()
        hook = self.hook()
        listing = hook.list_objects(PODS, namespace, label_selector=podspec.identity_selector(identity))
        candidates = [
            p
            for p in listing.get("items") or []
            if not (p.get("metadata") or {}).get("deletionTimestamp")
            and phase(p) != "Failed"
            and not is_consumed(p)  # kept by delete_policy after a try read it: run again
        ]
        if candidates:
            pod = max(candidates, key=lambda p: p["metadata"].get("creationTimestamp") or "")
            self._remember(pod)
            self.log.info(
                "Re-attaching to pod %s (started by try %s) instead of starting a second one",
                pod["metadata"]["name"],
                (pod["metadata"].get("annotations") or {}).get(podspec.label_key("try_number"), "?"),
            )
            return pod, True
        manifest = self.manifest(identity, namespace)
        pod, reattached = hook.create_or_adopt(PODS, namespace, manifest)
        self._remember(pod)
        self.log.info(
            "Pod %s created in namespace %s (profile %s, image %s)",
            pod["metadata"]["name"],
            namespace,
            self.profile.name,
            self.profile.image,
        )
        return pod, reattached

    def _remember(self, pod: Mapping[str, Any]) -> None:
        with self._lock:
            self.pod_name = pod["metadata"]["name"]
            self.pod_namespace = pod["metadata"].get("namespace") or "default"

    # ---- synchronous --------------------------------------------------------------------------
    def run(self, context: Mapping[str, Any]) -> PodResult:
        """Run the job to its end in this process; the pod is deleted on any error or kill.

        :param context: the task's Airflow context.
        """
        from airflow_mlplatform.hooks.kubernetes import PODS

        pod, reattached = self.start(context)
        name, namespace = pod["metadata"]["name"], pod["metadata"].get("namespace") or "default"
        hook = self.hook()
        feed = _LogFeed(self.log)
        finished_normally = False
        try:
            rv = pod["metadata"].get("resourceVersion")
            pod = hook.wait_for_object(
                PODS,
                namespace,
                name,
                is_started,
                timeout=self.startup_timeout,
                resource_version=rv,
                initial=pod,
            )
            if not stuck_reason(pod):
                self._follow_log(name, namespace, feed)
            deadline = self.timeout if self.timeout is not None else 365 * 24 * 3600.0
            pod = hook.wait_for_object(
                PODS,
                namespace,
                name,
                is_done,
                timeout=deadline,
                resource_version=pod["metadata"].get("resourceVersion"),
                initial=pod,
            )
            result = PodResult(
                pod_name=name,
                namespace=namespace,
                phase=phase(pod) if not stuck_reason(pod) else "Failed",
                exit_code=exit_code(pod),
                outputs=feed.parser.close(),
                reattached=reattached,
                reason=stuck_reason(pod),
                log_tail=feed.tail,
            )
            finished_normally = True
        finally:
            if not finished_normally:
                self.log.warning("Deleting pod %s: the task did not finish normally", name)
                self.kill()
        self._cleanup(result)
        return result

    def _follow_log(
        self, name: str, namespace: str, feed: _LogFeed, reconnects: int = 10, *, follow: bool = True
    ) -> bool:
        """Stream the log until the container ends (or read it once with ``follow=False``).

        A cut stream is resumed, the rest read once more when the pod is done, and a
        KubernetesError raised after the last failed attempt (``runners.pod_log``).
        Returns False if the pod is gone.
        """
        return stream_pod_log_lines(
            self.hook(),
            name,
            namespace,
            container=podspec.CONTAINER_NAME,
            on_line=feed.line,
            log=self.log,
            reconnects=reconnects,
            follow=follow,
        )

    def _cleanup(self, result: PodResult, *, consumed: bool = True) -> None:
        """Delete the pod per ``delete_policy``; a kept pod whose results were read is marked consumed.

        :param result: how the job ended.
        :param consumed: its results were read (False: a retry may adopt the kept pod and read them).
        """
        stuck = result.reason is not None and result.exit_code is None  # would stay Pending for ever
        if (
            stuck
            or self.delete_policy == "always"
            or (self.delete_policy == "on_success" and result.succeeded)
        ):
            self.delete()
            return
        self.log.info("Keeping pod %s (delete_policy=%s)", result.pod_name, self.delete_policy)
        if consumed:
            self._mark_consumed(result.pod_name, result.namespace)

    def _mark_consumed(self, name: str, namespace: str) -> None:
        """One merge patch: no later try (a cleared task) adopts this kept pod's old results."""
        from airflow_mlplatform.hooks.kubernetes import PODS

        with contextlib.suppress(KubernetesNotFoundError):  # deleted meanwhile: nothing to adopt
            self.hook().patch_object(
                PODS, namespace, name, {"metadata": {"annotations": {CONSUMED_ANNOTATION: "true"}}}
            )

    def delete(self) -> bool:
        """Delete the pod this runner started or adopted (no-op if none or already gone)."""
        from airflow_mlplatform.hooks.kubernetes import PODS

        with self._lock:
            name, namespace = self.pod_name, self.pod_namespace
        if not name or not namespace:
            return False
        return bool(self.hook().delete_object(PODS, namespace, name))

    def kill(self) -> None:
        """Delete the pod now (``on_kill``, timeouts, errors); safe to call from another thread."""
        from airflow_mlplatform.hooks.kubernetes import PODS, MLPlatformKubernetesHook

        with self._lock:
            name, namespace = self.pod_name, self.pod_namespace
        if not name or not namespace:
            return
        try:
            # A hook of its own: the running wait may hold the other one's connection.
            MLPlatformKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id).delete_object(
                PODS, namespace, name, grace_period_seconds=0
            )
            self.log.info("Pod %s deleted", name)
        except Exception:
            self.log.exception("Could not delete pod %s; delete it by hand", name)

    # ---- deferrable ---------------------------------------------------------------------------
    def trigger(self, pod: Mapping[str, Any], *, deadline: float | None = None) -> Any:
        """The PodJobTrigger that waits for ``pod`` in the triggerer.

        :param pod: the pod as returned by :meth:`start`.
        :param deadline: UNIX time when the job must be over (the pod is deleted then).
        """
        from airflow_mlplatform.triggers.kubernetes import PodJobTrigger

        if deadline is None and self.timeout is not None:
            deadline = time.time() + self.timeout
        return PodJobTrigger(
            pod_name=pod["metadata"]["name"],
            namespace=pod["metadata"].get("namespace") or "default",
            kubernetes_conn_id=self.kubernetes_conn_id,
            resource_version=pod["metadata"].get("resourceVersion"),
            phase=phase(pod),
            startup_timeout=self.startup_timeout,
            deadline=deadline,
        )

    def defer(
        self, operator: Any, context: Mapping[str, Any], *, method_name: str = "execute_complete"
    ) -> None:
        """Find or create the pod, then defer ``operator`` to the trigger (raises TaskDeferred).

        The deadline is the sooner of ``timeout`` and the task's ``execution_timeout``.

        :param operator: the operator being executed (its ``defer`` is called).
        :param context: the task's Airflow context.
        :param method_name: the operator method the task resumes in.
        """
        pod, reattached = self.start(context)
        deadlines = []
        if self.timeout is not None:
            deadlines.append(time.time() + self.timeout)
        execution_timeout = getattr(operator, "execution_timeout", None)
        ti = context.get("ti")
        start = getattr(ti, "start_date", None)
        if execution_timeout is not None:
            begun = start.timestamp() if start is not None else time.time()
            deadlines.append(begun + execution_timeout.total_seconds())
        trigger = self.trigger(pod, deadline=min(deadlines) if deadlines else None)
        operator.defer(trigger=trigger, method_name=method_name, kwargs={"reattached": reattached})

    def complete(self, context: Mapping[str, Any], event: Mapping[str, Any]) -> PodResult:
        """After the trigger fired: read the whole log once, parse it, delete per policy.

        :param context: the task's Airflow context.
        :param event: the trigger's event payload.
        """
        name, namespace = str(event["pod_name"]), str(event["namespace"])
        with self._lock:
            self.pod_name, self.pod_namespace = name, namespace
        status = event.get("status")
        if status != "done":
            self.kill()
            message = event.get("message") or status
            if status == "timeout":
                raise KubernetesTimeoutError(f"pod {name!r} in namespace {namespace!r}: {message}")
            raise JobFailedError(f"pod {name!r} in namespace {namespace!r}: {message}")
        feed = _LogFeed(self.log)

        def result() -> PodResult:
            return PodResult(
                pod_name=name,
                namespace=namespace,
                phase=str(event.get("phase")),
                exit_code=event.get("exit_code"),
                outputs=feed.parser.close(),
                reason=event.get("reason"),
                log_tail=feed.tail,
            )

        try:
            if not self._follow_log(name, namespace, feed, follow=False):
                self.log.warning("Pod %s is gone: its output cannot be read", name)
        except BaseException:
            # The log could not be read (403, cut for good, ...): still delete per policy, and
            # leave a kept pod unconsumed so that a retry can adopt it and read it again.
            self.log.warning("Reading the log of pod %s failed; cleaning up per delete_policy", name)
            try:
                self._cleanup(result(), consumed=False)
            except Exception:
                self.log.exception("Could not clean up pod %s; delete it by hand", name)
            raise
        done = result()
        self._cleanup(done)
        return done
