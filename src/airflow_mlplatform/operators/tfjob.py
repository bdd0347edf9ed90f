"""TFJobOperator: distributed (or single-node) TensorFlow training as an Airflow task."""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_mlplatform.config import default_deferrable
from airflow_mlplatform.lineage import LineageMixin
from airflow_mlplatform.parameters import FiniteRenderedParameters

BACKENDS = ("kubeflow", "local")
#: Environment variable holding the job's parameters as one JSON object.
PARAMETERS_ENV = "MLPLATFORM_PARAMETERS"


class TFJobOperator(LineageMixin, FiniteRenderedParameters, BaseOperator):
    """Run a TensorFlow training command on several replicas, each with its ``TF_CONFIG``.

    ``replicas`` maps a replica type (``Chief``, ``Worker``, ``PS``, ``Evaluator``) to a count,
    or to a count plus its own compute profile (``{"Worker": {"count": 4, "compute": "gpu"}}``
    or ``{"Worker": (4, "gpu")}``); None is one Worker (single-node training).

    The Chief's (else Worker 0's) output is streamed into the task log; what it records with
    ``airflow_mlplatform.runtime.record(name, value)`` becomes the XCom ``return_value`` (and
    one XCom per name), its JSON-object lines are metrics (XCom ``metrics``) and the execution
    record is pushed as ``execution_record`` and stored beside the replicas' logs.

    Parameters reach every replica as one JSON object in the environment variable
    ``MLPLATFORM_PARAMETERS`` (DAG params overlaid by ``parameters``).

    :param command: the training command, a string (split like a shell) or an argv list
        (templated). With backend ``local``, ``python``/``python3`` as the first word is the
        worker's own interpreter. Backend ``kubeflow``: None (the default) runs the image's
        ENTRYPOINT, as most published TFJob examples do; ``local`` needs a command.
    :param image: container image of the replicas (backend ``kubeflow``; templated).
    :param replicas: replica type to count, ``(count, compute)`` or ``{"count": n, "compute": name}``
        (the dict form also takes ``restart_policy``, for that replica type).
    :param parameters: local parameters (templated; Jinja and XComArg values work).
    :param backend: ``kubeflow`` (a TFJob on Kubernetes) or ``local`` (replicas as local
        processes on 127.0.0.1: small runs and CI).
    :param compute: default compute profile of every replica (backend ``kubeflow``).
    :param env: extra environment variables of every replica (templated).
    :param cwd: local: working folder of the replicas (templated), default the DAG file's folder;
        kubeflow: the containers' workingDir.
    :param include_dag_params: pass the DAG-level params too (default True).
    :param clean_pod_policy: kubeflow runPolicy: which pods to delete at the end (All, Running, None).
    :param ttl_seconds_after_finished: kubeflow runPolicy: delete the finished TFJob after this long.
    :param active_deadline_seconds: kubeflow runPolicy: fail the TFJob after this long.
    :param backoff_limit: kubeflow runPolicy: retries before the TFJob is failed.
    :param restart_policy: kubeflow: every replica's ``restartPolicy`` (``Never``, ``OnFailure``,
        ``ExitCode``, ``Always``); a replica's own ``restart_policy`` wins. Local replicas
        are never restarted.
    :param scheduling_policy: kubeflow runPolicy.schedulingPolicy, for gang scheduling
        (Volcano, scheduler-plugins): ``{"min_available": 3, "queue": "training",
        "priority_class": "high", "min_resources": {...}, "schedule_timeout_seconds": 600}``.
    :param scheduler_name: kubeflow: the replica pods' ``schedulerName`` (e.g. ``volcano``).
    :param success_policy: kubeflow ``successPolicy``: None/"" (the Chief, else Worker 0,
        decides) or ``AllWorkers``.
    :param suspend: kubeflow runPolicy.suspend: create the TFJob suspended (a queue such as
        Kueue, or a person, resumes it); the wait for it to run is bounded by ``startup_timeout``.
    :param namespace: namespace of the TFJob (templated); default: the profile's, else the connection's.
    :param kubernetes_conn_id: the Kubernetes connection (templated).
    :param grace_period: seconds between SIGTERM and SIGKILL when local replicas are stopped.
    :param job_timeout: seconds the job may run (None: only ``execution_timeout``).
    :param startup_timeout: kubeflow: seconds for the TFJob to run after it was created (None: 600).
        A job whose replica pods never run (an image that cannot be pulled, pods that cannot be
        scheduled) or that no training operator picks up fails the task then, with what to check.
    :param delete_on_success: kubeflow: delete the TFJob when it succeeded (failed, killed and
        timed-out jobs are always deleted); False keeps it (``ttl_seconds_after_finished`` applies).
    :param deferrable: kubeflow: wait for the TFJob in the triggerer; default
        ``[operators] default_deferrable``.
    """

    template_fields: Sequence[str] = (
        "command",
        "image",
        "parameters",
        "env",
        "cwd",
        "namespace",
        "kubernetes_conn_id",
    )
    template_ext: Sequence[str] = ()
    template_fields_renderers: ClassVar[dict[str, str]] = {"parameters": "json", "env": "json"}
    ui_color = "#ffe0b2"

    def __init__(
        self,
        *,
        command: str | Sequence[str] | None = None,
        image: str | None = None,
        replicas: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        backend: str = "kubeflow",
        compute: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        include_dag_params: bool = True,
        clean_pod_policy: str = "Running",
        ttl_seconds_after_finished: int | None = None,
        active_deadline_seconds: int | None = None,
        backoff_limit: int | None = None,
        namespace: str | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        grace_period: float = 5.0,
        job_timeout: float | None = None,
        startup_timeout: float | None = None,
        delete_on_success: bool = True,
        deferrable: bool | None = None,
        restart_policy: str = "Never",
        scheduling_policy: Mapping[str, Any] | None = None,
        scheduler_name: str | None = None,
        success_policy: str | None = None,
        suspend: bool | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.command = command
        self.image = image
        self.replicas = replicas
        self.parameters = parameters
        self.backend = backend
        self.compute = compute
        self.env = env
        self.cwd = cwd
        self.include_dag_params = include_dag_params
        self.clean_pod_policy = clean_pod_policy
        self.ttl_seconds_after_finished = ttl_seconds_after_finished
        self.active_deadline_seconds = active_deadline_seconds
        self.backoff_limit = backoff_limit
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.grace_period = grace_period
        self.job_timeout = job_timeout
        self.startup_timeout = startup_timeout
        self.delete_on_success = delete_on_success
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.restart_policy = restart_policy
        self.scheduling_policy = scheduling_policy
        self.scheduler_name = scheduler_name
        self.success_policy = success_policy
        self.suspend = suspend
        self._job: Any = None
        self._check_at_parse_time()

    def _check_at_parse_time(self) -> None:
        """Cheap checks when the DAG file is parsed: backend, replicas, every compute profile."""
        from airflow_mlplatform.specs.tfjob import parse_replicas

        if not _templated(self.backend):
            self._check_backend()
        replicas = parse_replicas(self.replicas)
        self._resolved_replicas(replicas)
        self._kubeflow_options()

    # -- checks, before anything is started ------------------------------------------------
    def _kubeflow_options(self) -> dict[str, Any]:
        """The Kubeflow-only options as build_tfjob/build_run_policy take them, checked."""
        from airflow_mlplatform.specs import tfjob as spec

        return {
            "restart_policy": spec.check_restart_policy(self.restart_policy),
            "scheduling_policy": spec.build_scheduling_policy(self.scheduling_policy or {}) or None,
            "success_policy": spec.build_tfjob_success_policy(self.success_policy),
        }

    def _argv(self) -> list[str]:
        from airflow_mlplatform.exceptions import JobDefinitionError

        command = self.command
        argv = shlex.split(command) if isinstance(command, str) else [str(c) for c in command or []]
        if not argv and self.backend == "kubeflow":
            return []  # the image's ENTRYPOINT
        if not argv:
            raise JobDefinitionError(
                f"task {self.task_id!r}: command is empty; backend 'local' runs the training "
                "command itself: give it, e.g. command=['python', 'scripts/train.py'] (backend "
                "'kubeflow' can run the image's ENTRYPOINT instead)"
            )
        return argv

    def _workdir(self) -> str:
        if self.cwd:
            return str(Path(self.cwd).expanduser().resolve())
        fileloc = getattr(self.dag, "fileloc", None) if self.has_dag() else None
        return str(Path(fileloc).parent) if fileloc else os.getcwd()

    @staticmethod
    def _script(argv: Sequence[str], cwd: str) -> str | None:
        """The script the command runs (first ``*.py`` argument of a Python command), if any."""
        if Path(argv[0]).name.startswith("python"):
            for arg in argv[1:]:
                if arg == "-m" or arg == "-c":
                    return None
                if not arg.startswith("-"):
                    return str(Path(cwd, arg).resolve()) if arg.endswith(".py") else None
        elif argv[0].endswith(".py"):
            return str(Path(cwd, argv[0]).resolve())
        return None

    def _check_backend(self) -> None:
        from airflow_mlplatform.exceptions import ConfigurationError

        if self.backend not in BACKENDS:
            raise ConfigurationError(
                f"task {self.task_id!r}: backend {self.backend!r} is unknown; use one of {', '.join(BACKENDS)}"
            )

    # -- execute ---------------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any]:
        """Check the inputs, run the replicas, push values, metrics and the execution record.

        :param context: the task's Airflow context.
        """
        from airflow_mlplatform.exceptions import ScriptNotFoundError
        from airflow_mlplatform.parameters import merge_parameters
        from airflow_mlplatform.specs.tfjob import parse_replicas

        self._check_backend()
        replicas = parse_replicas(self.replicas)
        argv = self._argv()
        parameters = merge_parameters(context, self.parameters, include_dag_params=self.include_dag_params)
        if self.backend == "kubeflow":
            return self._execute_kubeflow(context, argv, replicas, parameters)
        cwd = self._workdir()
        script = self._script(argv, cwd)
        if script is not None and not os.path.isfile(script):
            raise ScriptNotFoundError(
                f"task {self.task_id!r}: the training script {script} does not exist (command {argv}, "
                f"working folder {cwd}); fix the path or set cwd="
            )
        return self._execute_local(context, argv, replicas, parameters, cwd, script)

    def _resolved_replicas(self, replicas: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
        """Pod fields per replica: the operator's profile, then the replica's own, then its fields."""
        from airflow_mlplatform.compute import resolve_compute
        from airflow_mlplatform.specs.pod_template import pod_fields as pod_fields_from_profile
        from airflow_mlplatform.specs.tfjob import Replica, check_pod_overrides

        profile = resolve_compute(self.compute)
        resolved: dict[str, Any] = {}
        for rtype, replica in replicas.items():
            fields: dict[str, Any] = pod_fields_from_profile(profile) if profile is not None else {}
            own = resolve_compute(replica.compute) if replica.compute else profile
            if replica.compute:
                assert own is not None
                fields.update(pod_fields_from_profile(own))
            # a replica's pod fields are a DAG author's overrides: the replica's profile decides
            check_pod_overrides(replica.pod, own, what=f"replicas[{rtype!r}]")
            fields.update(replica.pod)
            resolved[rtype] = Replica(rtype, replica.count, replica.compute, fields, replica.restart_policy)
        return resolved, profile

    def _kubeflow_job(
        self, context: Any, argv: list[str], replicas: Mapping[str, Any], parameters: Mapping[str, Any]
    ) -> tuple[Any, dict[str, Any]]:
        """The manifest (every check, before anything is created), the job and what to record."""
        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook
        from airflow_mlplatform.runners.kube_job import KubeJob, job_deadline
        from airflow_mlplatform.specs import pod as podspec
        from airflow_mlplatform.specs import tfjob as spec
        from airflow_mlplatform.specs.kinds import object_name

        resolved, profile = self._resolved_replicas(replicas)
        options = self._kubeflow_options()
        identity = er.task_identity(context)
        namespace = self.namespace or (profile.namespace if profile else None)
        manifest = spec.build_tfjob(
            name=object_name(spec.TFJOB_KIND, identity),
            namespace=namespace or "default",
            image=self.image or (profile.image if profile else None) or "",
            command=argv or None,
            replicas=resolved,
            env={str(k): str(v) for k, v in (self.env or {}).items()},
            provider_env={PARAMETERS_ENV: json.dumps(parameters)},
            labels=podspec.identity_labels(identity),
            annotations=podspec.identity_annotations(identity),
            run_policy=spec.build_run_policy(
                clean_pod_policy=self.clean_pod_policy,
                ttl_seconds_after_finished=self.ttl_seconds_after_finished,
                active_deadline_seconds=self.active_deadline_seconds,
                backoff_limit=self.backoff_limit,
                scheduling_policy=options["scheduling_policy"],
                suspend=self.suspend,
            ),
            working_dir=self.cwd,
            restart_policy=options["restart_policy"],
            scheduler_name=self.scheduler_name,
            success_policy=options["success_policy"],
            kueue_queue=profile.kueue_queue if profile is not None else None,
        )
        hook = MLPlatformKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)
        if namespace is None:
            manifest["metadata"]["namespace"] = hook.default_namespace()
        job = KubeJob(
            spec.TFJOB_KIND,
            manifest,
            selector=podspec.identity_selector(identity),
            kubernetes_conn_id=self.kubernetes_conn_id,
            hook=hook,
            log=self.log,
            startup_timeout=self.startup_timeout,
            deadline=job_deadline(timeout=self.job_timeout, operator=self, context=context),
            delete_policy="always" if self.delete_on_success else "on_failure",
        )
        plan = {
            "argv": argv or None,  # None: the image's ENTRYPOINT
            "parameters": dict(parameters),
            "images": {
                rtype: rs["template"]["spec"]["containers"][0]["image"]
                for rtype, rs in manifest["spec"]["tfReplicaSpecs"].items()
            },
            "replicas": {rtype: r.count for rtype, r in resolved.items()},
            "leader": spec.leader_pod(manifest["metadata"]["name"], manifest),
        }
        return job, plan

    def _execute_kubeflow(
        self, context: Any, argv: list[str], replicas: Mapping[str, Any], parameters: Mapping[str, Any]
    ) -> dict[str, Any]:
        job, plan = self._kubeflow_job(context, argv, replicas, parameters)
        self._job = job  # on_kill (also during the create) deletes it
        try:
            return self._record_kubeflow(context, job, plan, defer_kwargs={"plan": plan})
        finally:
            self._job = None

    def execute_complete(
        self,
        context: Any,
        event: dict[str, Any],
        plan: dict[str, Any] | None = None,
        reattached: bool = False,
    ) -> dict[str, Any]:
        """Resume after the trigger fired: read the leader's log, fail or push the outputs.

        :param context: the task's Airflow context.
        :param event: the trigger's event.
        :param plan: what ``execute`` prepared (command, parameters, images, replicas).
        :param reattached: whether the TFJob was adopted from an earlier try.
        """
        from airflow_mlplatform.runners.kube_job import KubeJob
        from airflow_mlplatform.specs import tfjob as spec

        job = KubeJob.from_event(
            spec.TFJOB_KIND,
            event,
            kubernetes_conn_id=self.kubernetes_conn_id,
            log=self.log,
            delete_policy="always" if self.delete_on_success else "on_failure",
        )
        return self._record_kubeflow(context, job, dict(plan or {}), event=event, reattached=reattached)

    def _record_kubeflow(self, context: Any, job: Any, plan: Mapping[str, Any], **how: Any) -> dict[str, Any]:
        """Run or defer the TFJob (or read it after the trigger: ``event=``) and record it."""
        from airflow_mlplatform.runners.kube_job import run_job_recorded

        return run_job_recorded(
            self,
            context,
            job,
            where={
                "backend": "kubeflow",
                "replicas": plan.get("replicas"),
                "leader": plan.get("leader") or job.name,
            },
            parameters=plan.get("parameters") or {},
            code={"command": plan.get("argv")},
            environment={"images": plan.get("images")},
            **how,
        )

    def _execute_local(
        self,
        context: Any,
        argv: list[str],
        replicas: Mapping[str, Any],
        parameters: Mapping[str, Any],
        cwd: str,
        script: str | None,
    ) -> dict[str, Any]:
        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform import storage
        from airflow_mlplatform.jobs import JobRun, run_recorded
        from airflow_mlplatform.runners.tf_local import LocalTFJob
        from airflow_mlplatform.runtime import OUTPUT_DIR_ENV
        from airflow_mlplatform.values import StreamParser

        if Path(argv[0]).name in ("python", "python3"):
            argv = [sys.executable, *argv[1:]]
        counts = {rtype: r.count for rtype, r in replicas.items()}
        restarts = {
            t: r.restart_policy for t, r in replicas.items() if (r.restart_policy or "Never") != "Never"
        }
        if restarts or self.restart_policy != "Never":
            self.log.warning(
                "restart policies %s apply to Kubeflow replicas only: local replicas are not restarted",
                restarts or self.restart_policy,
            )
        folder = storage.OutputFolder(storage.task_output_location(context))
        env = {  # the task's env over the defaults, the provider's own variables over both
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **{str(k): str(v) for k, v in (self.env or {}).items()},
            OUTPUT_DIR_ENV: str(folder.path),
            PARAMETERS_ENV: json.dumps(parameters),
        }
        parser = StreamParser()

        def leader_line(line: str) -> None:
            self.log.info("%s", line)
            parser.feed_line(line)

        job = LocalTFJob(
            argv,
            counts,
            env=env,
            cwd=cwd,
            log_dir=folder.path / "logs",
            on_leader_line=leader_line,
            grace_period=self.grace_period,
        )
        self._job = job
        lead = f"{job.leader[0].lower()}-{job.leader[1]}"
        self.log.info(
            "Starting TensorFlow replicas %s locally (command %s, working folder %s); streaming %s's output",
            counts,
            argv,
            cwd,
            lead,
        )

        def ran_on() -> dict[str, Any]:
            return {
                **er.where(),
                "backend": "local",
                "replicas": counts,
                "cluster": job.cluster,
                "leader": lead,
            }

        logs: dict[str, str] = {}  # known once the replicas started; read when the record is built

        def run() -> JobRun:
            try:
                job.run(timeout=self.job_timeout)
            finally:
                job.stop()
                self._job = None
                logs.update({name: folder.uri(f"logs/{Path(p).name}") for name, p in job.log_files().items()})
            return JobRun(outputs=parser.close(), ran_on=ran_on())

        return run_recorded(
            context,
            job=run,
            folder=folder,
            parameters=parameters,
            code={
                "command": argv,
                "script": script,
                "sha256": er.file_sha256(script) if script and os.path.isfile(script) else None,
                "git_commit": er.git_commit(script or cwd),
            },
            environment={"tensorflow": _tensorflow_version()},
            outputs={"logs": logs},
            ran_on=ran_on,
            partial=parser.close,
        )

    def on_kill(self) -> None:
        """Stop every local replica (their process groups), or delete the TFJob."""
        job = self._job
        if job is None:
            return
        stop = getattr(job, "stop", None) or job.kill
        stop()


def _templated(value: Any) -> bool:
    """Whether ``value`` is rendered at run time (a Jinja string or an XComArg-like object)."""
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    return hasattr(value, "resolve")


def _tensorflow_version() -> str | None:
    """The installed TensorFlow distribution's version, without importing TensorFlow."""
    from importlib import metadata

    for dist in ("tensorflow", "tensorflow-cpu", "tf-nightly"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return None
