"""Run one command in a Kubernetes pod built from a compute profile: the pod kind of the one lifecycle.

Any operator that runs a job in a pod composes this runner (NotebookOperator, RStudioJobOperator,
MLPlatformPodOperator)::

    runner = PodJobRunner(profile=profile, command=["python", "train.py"], env={...},
                          kubernetes_conn_id=self.kubernetes_conn_id, log=self.log)
    # synchronous: blocks until the pod ends; logs stream into the task log
    result = runner.run(context)
    # deferrable: find-or-create the pod, then defer to KubeJobTrigger (raises TaskDeferred) ...
    runner.defer(self, context, method_name="execute_complete")
    # ... and in execute_complete(context, event): read the log once, parse, delete per policy
    result = runner.complete(context, event)
    result.raise_for_status()                # JobFailedError with the log's tail on a non-zero exit
    result.outputs.values, result.outputs.metrics, result.exit_code, result.pod_name
    # on_kill: runner.kill()                 # deletes the pod (thread-safe)

The lifecycle itself (re-attach, kill-safe create, start-up timeout, resumable log, deadline,
delete policy, consumed marks, the trigger) is :class:`airflow_mlplatform.runners.kube_job.KubeJob`
with the :data:`~airflow_mlplatform.specs.kinds.POD` kind; this module builds the pod from the
profile and keeps the pod-flavoured names. Requests per job: sync 6 (list, create, watch, log,
watch, delete), deferrable 7 (list, create; in the trigger a watch until it runs, the live log, a
watch until it ends; then the log once and the delete), however long the job runs, plus a
reconnect per dropped watch or cut log stream, and one GET after a watch attempt that saw nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_mlplatform.compute import ComputeProfile
from airflow_mlplatform.exceptions import ConfigurationError
from airflow_mlplatform.runners.kube_job import DELETE_POLICIES, JobResult, KubeJob, job_deadline
from airflow_mlplatform.specs import pod as podspec
from airflow_mlplatform.specs.kinds import CONSUMED_ANNOTATION, POD

__all__ = ["CONSUMED_ANNOTATION", "DELETE_POLICIES", "PodJobRunner", "PodResult"]


@dataclass
class PodResult(JobResult):
    """How a pod job ended (a :class:`~airflow_mlplatform.runners.kube_job.JobResult` with pod names)."""

    @property
    def pod_name(self) -> str:
        return self.name

    @property
    def phase(self) -> str:
        return str(self.state or "Pending")

    @property
    def reason(self) -> str | None:
        """Why it failed without running (an image that cannot be pulled...), else None."""
        return self.message if self.fatal else None


def _as_pod_result(result: JobResult) -> PodResult:
    return PodResult(**{f: getattr(result, f) for f in JobResult.__dataclass_fields__})


class PodJobRunner:
    """Runs one command in a pod built from ``profile``.

    :param profile: a kubernetes compute profile.
    :param command: the container's command.
    :param args: the container's args.
    :param env: the task's environment variables (win over the profile's).
    :param provider_env: the provider's own variables (``MLPLATFORM_*``), win over both.
    :param kubernetes_conn_id: the Kubernetes connection.
    :param namespace: overrides the profile's namespace (else the connection's, else ``default``).
    :param name_prefix: prefix of the pod name.
    :param delete_policy: after a normal end: ``always``, ``on_success`` (keep failed pods),
        ``on_failure`` (keep successful pods) or ``never``.
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
        provider_env: Mapping[str, Any] | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        namespace: str | None = None,
        name_prefix: str = POD.name_prefix,
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
        self.provider_env = dict(provider_env or {})
        self.kubernetes_conn_id = kubernetes_conn_id
        self.namespace = namespace
        self.name_prefix = name_prefix
        self.delete_policy = delete_policy
        self.startup_timeout = startup_timeout
        self.timeout = timeout
        self.labels = dict(labels or {})
        self.annotations = dict(annotations or {})
        self.working_dir = working_dir
        self.log = log
        self._job: KubeJob | None = None
        self._hook: Any = None
        self._lock = threading.Lock()

    # ---- pieces -------------------------------------------------------------------------------
    def hook(self) -> Any:
        """The sync hook (created once)."""
        if self._hook is None:
            from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook

            self._hook = MLPlatformKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)
        return self._hook

    @property
    def pod_name(self) -> str | None:
        return self._job.name if self._job is not None else None

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
            env={**self.env, **self.provider_env},
            labels={**self.labels, **podspec.identity_labels(identity)},
            annotations={**self.annotations, **podspec.identity_annotations(identity)},
            namespace=namespace,
            working_dir=self.working_dir,
        )

    def job(self, context: Mapping[str, Any], operator: Any = None) -> KubeJob:
        """The :class:`KubeJob` of this task try (created once).

        :param context: the task's Airflow context.
        :param operator: the operator (its ``execution_timeout`` bounds the deadline).
        """
        from airflow_mlplatform.execution_record import task_identity

        with self._lock:
            if self._job is None:
                identity = task_identity(context)
                self._job = KubeJob(
                    POD,
                    self.manifest(identity, self.resolve_namespace()),
                    selector=podspec.identity_selector(identity),
                    kubernetes_conn_id=self.kubernetes_conn_id,
                    hook=self.hook(),
                    log=self.log,
                    startup_timeout=self.startup_timeout,
                    deadline=job_deadline(timeout=self.timeout, operator=operator, context=context),
                    delete_policy=self.delete_policy,
                    log_prefix="[pod] ",
                )
            return self._job

    def start(self, context: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Find this task's live pod (any try) or create one; returns ``(pod, reattached)``.

        :param context: the task's Airflow context.
        """
        return self.job(context).start()

    # ---- synchronous --------------------------------------------------------------------------
    def run(self, context: Mapping[str, Any], operator: Any = None) -> PodResult:
        """Run the job to its end in this process; the pod is deleted on any error or kill.

        :param context: the task's Airflow context.
        :param operator: the operator (its ``execution_timeout`` bounds the deadline).
        """
        return _as_pod_result(self.job(context, operator).run())

    def delete(self) -> bool:
        """Delete the pod this runner started or adopted (no-op if none or already gone)."""
        return self._job.delete() if self._job is not None else False

    def kill(self) -> None:
        """Delete the pod now (``on_kill``, timeouts, errors); safe to call from another thread."""
        if self._job is not None:
            self._job.kill()

    # ---- deferrable ---------------------------------------------------------------------------
    def trigger(self, pod: Mapping[str, Any], *, deadline: float | None = None) -> Any:
        """The KubeJobTrigger that waits for ``pod`` in the triggerer.

        :param pod: the pod as returned by :meth:`start`.
        :param deadline: UNIX time when the job must be over (the pod is deleted then).
        """
        assert self._job is not None, "start() first"
        if deadline is not None:
            self._job.deadline = deadline
        return self._job.trigger(pod)

    def defer(
        self, operator: Any, context: Mapping[str, Any], *, method_name: str = "execute_complete"
    ) -> None:
        """Find or create the pod, then defer ``operator`` to the trigger (raises TaskDeferred).

        The deadline is the sooner of ``timeout`` and the task's start + ``execution_timeout``.

        :param operator: the operator being executed (its ``defer`` is called).
        :param context: the task's Airflow context.
        :param method_name: the operator method the task resumes in.
        """
        self.job(context, operator).defer(operator, method_name=method_name)

    def complete(
        self, context: Mapping[str, Any], event: Mapping[str, Any], *, reattached: bool = False
    ) -> PodResult:
        """After the trigger fired: read the whole log once, parse it, delete per policy.

        :param context: the task's Airflow context.
        :param event: the trigger's event payload.
        :param reattached: whether the pod was adopted from an earlier try.
        """
        return _as_pod_result(self.job(context).complete(event, reattached=reattached))
