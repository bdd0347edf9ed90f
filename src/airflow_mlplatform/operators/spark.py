"""SparkApplicationOperator: a Spark application (Python, Scala, Java, R) as an Airflow task."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_mlplatform.lineage import LineageMixin
from airflow_mlplatform.operators._pod_job import PodJobMixin


class SparkApplicationOperator(LineageMixin, PodJobMixin, BaseOperator):
    """Run a Spark application and push what its driver recorded.

    With a ``kubernetes`` compute profile the application is a ``sparkoperator.k8s.io/v1beta2``
    SparkApplication (the Spark operator runs its driver and executors): driver and executor
    sizes, image, service account, node selector, tolerations and tenant labels come from the
    profiles (:mod:`airflow_mlplatform.specs.spark`). Each try has its own object name, so a
    rerun never meets a 409 and a retry never starts a second driver; a restarted task
    re-attaches to the running one. ``applicationState`` COMPLETED is success; FAILED,
    SUBMISSION_FAILED and UNKNOWN fail the task with the operator's ``errorMessage``. The
    driver's log is streamed into the task log and its recorded values and metric lines are
    parsed from it; on kill and timeout the object is deleted, in sync and deferrable mode.

    Without a profile (or with a ``local`` one) the same application runs in the worker with
    ``spark-submit`` and the profile's ``spark: {master, conf}`` (``local[*]`` on loopback by
    default), its process group killed on kill and timeout.

    Parameters reach the application as JSON in ``MLPLATFORM_PARAMETERS``
    (``json.loads(os.environ["MLPLATFORM_PARAMETERS"])``); values go back with
    ``airflow_mlplatform.runtime.record`` (Python), ``mlplatform.record`` (Scala, see
    ``mlplatform.scala``) or the one-line wire format from any language.

    :param application: the main application file (templated): in the worker a path (relative
        to the DAG file) or ``local://`` path; on Kubernetes a ``local://`` path in the image or
        a URI the image can read (``s3a://...``).
    :param application_type: ``Python``, ``Scala``, ``Java`` or ``R``; default: from the extension.
    :param main_class: the main class of a Scala or Java application (templated).
    :param arguments: the application's arguments (templated).
    :param parameters: local parameters (templated); DAG params are the global ones.
    :param compute: a compute profile for the driver (and the executors): ``kubernetes`` runs a
        SparkApplication, None or ``local`` runs spark-submit in the worker. Unknown names fail
        when the DAG file is parsed.
    :param compute_overrides: single profile fields to override (``image``, ``spark``...).
    :param executor_compute: another compute profile for the executors.
    :param executors: number of executors (Kubernetes).
    :param spark_conf: Spark properties (templated); they win over the profile's ``spark.conf``.
    :param env: extra environment variables of the driver and executors (templated).
    :param include_dag_params: pass the DAG-level params (default True).
    :param namespace: the namespace; default the profile's, else the connection's.
    :param kubernetes_conn_id: the Kubernetes connection (templated).
    :param deferrable: wait in the triggerer; default ``[operators] default_deferrable``.
    :param spark_version: ``sparkVersion`` of the image.
    :param ttl_seconds: ``timeToLiveSeconds``: how long the Spark operator keeps a finished object.
    :param startup_timeout: seconds the application may take to start running.
    :param delete_policy: after a normal end: ``always``, ``on_success``, ``on_failure`` or ``never``.
    :param cwd: working folder in the worker; default: the application's folder.
    """

    template_fields: Sequence[str] = (
        "application",
        "main_class",
        "arguments",
        "parameters",
        "spark_conf",
        "env",
        "namespace",
        "kubernetes_conn_id",
        "cwd",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "parameters": "json",
        "env": "json",
        "spark_conf": "json",
    }
    ui_color = "#f7c59f"

    def __init__(
        self,
        *,
        application: str,
        application_type: str | None = None,
        main_class: str | None = None,
        arguments: Sequence[Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        compute: str | None = None,
        compute_overrides: Mapping[str, Any] | None = None,
        executor_compute: str | None = None,
        executors: int = 1,
        spark_conf: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        include_dag_params: bool = True,
        namespace: str | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        deferrable: bool | None = None,
        spark_version: str | None = None,
        ttl_seconds: int | None = None,
        startup_timeout: float = 600,
        delete_policy: str = "always",
        cwd: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.application = application
        self.application_type = application_type
        self.main_class = main_class
        self.arguments = list(arguments or [])
        self.parameters = parameters
        self._store_compute(
            compute=compute,
            compute_overrides=compute_overrides,
            kubernetes_conn_id=kubernetes_conn_id,
            deferrable=deferrable,
        )
        self.executor_compute = executor_compute
        self.executors = executors
        self.spark_conf = spark_conf
        self.env = env
        self.include_dag_params = include_dag_params
        self.namespace = namespace
        self.spark_version = spark_version
        self.ttl_seconds = ttl_seconds
        self.startup_timeout = startup_timeout
        self.delete_policy = delete_policy
        self.cwd = cwd
        self._check_definition()

    def _check_definition(self) -> None:
        """Cheap checks at parse time: the executor profile, the application's type."""
        from airflow_mlplatform.compute import resolve_compute
        from airflow_mlplatform.exceptions import JobDefinitionError
        from airflow_mlplatform.specs.spark import app_type

        if self.executor_compute is not None:
            resolve_compute(self.executor_compute)
        if "{{" not in self.application:
            kind = app_type(self.application, self.application_type)
            if kind in ("Scala", "Java") and not self.main_class:
                raise JobDefinitionError(
                    f"task {self.task_id!r}: a {kind} application needs main_class= (the class with main())"
                )

    def execute(self, context: Any) -> dict[str, Any]:
        """Run the application (in the worker or as a SparkApplication) and push its outputs.

        :param context: the task's Airflow context.
        """
        profile = self._profile()
        if profile is not None and profile.is_kubernetes:
            return self._execute_on_kubernetes(context, profile)
        return self._execute_in_worker(context, profile)

    def _execute_in_worker(self, context: Any, profile: Any) -> dict[str, Any]:
        import os
        from pathlib import Path

        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform.exceptions import JobFailedError, ScriptNotFoundError
        from airflow_mlplatform.jobs import JobRun, run_recorded
        from airflow_mlplatform.runners.process import ProcessRunner
        from airflow_mlplatform.runners.spark_submit import local_path, spark_submit_argv, worker_env
        from airflow_mlplatform.runtime import OUTPUT_DIR_ENV, OUTPUT_URI_ENV
        from airflow_mlplatform.specs.spark import PARAMETERS_ENV

        application, parameters, folder = self._job_inputs(context, local_path(self.application))
        if not Path(application).is_file():
            raise ScriptNotFoundError(
                f"Spark application {application!r} does not exist; give a path relative to the DAG "
                "file's folder, or an absolute one"
            )
        spark = profile.spark if profile is not None else None
        argv = spark_submit_argv(
            spark=spark,
            application=application,
            main_class=self.main_class,
            arguments=self.arguments,
            spark_conf=self.spark_conf,
            name=self.task_id,
        )
        env = {
            **os.environ,
            **worker_env(spark),
            **{str(k): str(v) for k, v in (profile.env if profile is not None else {}).items()},
            **{str(k): str(v) for k, v in (self.env or {}).items()},
            PARAMETERS_ENV: json.dumps(parameters),
            OUTPUT_DIR_ENV: str(folder.path),
            OUTPUT_URI_ENV: folder.location,
        }
        self.log.info("Running %s", " ".join(argv))
        self._runner = ProcessRunner(argv, env=env, cwd=self.cwd or str(Path(application).parent))

        def job() -> JobRun:
            try:
                result = self._runner.run()
            finally:
                self._runner = None
            if result.returncode != 0:
                tail = "\n".join(result.tail[-20:])
                raise JobFailedError(
                    f"spark-submit of {application} exited with status {result.returncode}; last lines:\n{tail}"
                )
            return JobRun(outputs=result.outputs)

        return run_recorded(
            context,
            job=job,
            folder=folder,
            parameters=parameters,
            code={
                "application": application,
                "sha256": er.file_sha256(application),
                "git_commit": er.git_commit(application),
            },
            environment={"spark_submit": argv[0], "master": argv[argv.index("--master") + 1]},
            outputs={},
        )

    def _spark_job(self, context: Any, profile: Any) -> tuple[Any, dict[str, Any]]:
        """The SparkApplication of this try on the one job lifecycle, and the job's parameters."""
        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform import storage
        from airflow_mlplatform.compute import resolve_compute
        from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook
        from airflow_mlplatform.parameters import merge_parameters
        from airflow_mlplatform.runners.kube_job import KubeJob, job_deadline
        from airflow_mlplatform.runtime import OUTPUT_URI_ENV
        from airflow_mlplatform.specs import pod as podspec
        from airflow_mlplatform.specs.kinds import object_name
        from airflow_mlplatform.specs.spark import (
            DEFAULT_SPARK_VERSION,
            DEFAULT_TTL_SECONDS,
            SPARK_KIND,
            build_sparkapplication,
        )

        identity = er.task_identity(context)
        parameters = merge_parameters(context, self.parameters, include_dag_params=self.include_dag_params)
        namespace = self.namespace or profile.namespace
        manifest = build_sparkapplication(  # every check of the manifest, before anything is created
            name=object_name(SPARK_KIND, identity),
            namespace=namespace or "default",
            profile=profile,
            executor_profile=resolve_compute(self.executor_compute) if self.executor_compute else None,
            executors=self.executors,
            main_file=self.application,
            application_type=self.application_type,
            main_class=self.main_class,
            arguments=self.arguments,
            parameters_json=json.dumps(parameters),
            spark_conf=self.spark_conf,
            env=self.env,
            provider_env={OUTPUT_URI_ENV: storage.task_output_location(context)},
            labels=podspec.identity_labels(identity),
            annotations=podspec.identity_annotations(identity),
            spark_version=self.spark_version or DEFAULT_SPARK_VERSION,
            ttl_seconds=self.ttl_seconds or DEFAULT_TTL_SECONDS,
        )
        hook = MLPlatformKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)
        if namespace is None:
            manifest["metadata"]["namespace"] = hook.default_namespace()
        job = KubeJob(
            SPARK_KIND,
            manifest,
            selector=podspec.identity_selector(identity),
            kubernetes_conn_id=self.kubernetes_conn_id,
            hook=hook,
            log=self.log,
            startup_timeout=self.startup_timeout,
            deadline=job_deadline(operator=self, context=context),
            delete_policy=self.delete_policy,
        )
        return job, parameters

    def _execute_on_kubernetes(self, context: Any, profile: Any) -> dict[str, Any]:
        job, parameters = self._spark_job(context, profile)
        self._runner = job  # on_kill (also during the create) deletes the SparkApplication
        try:
            return self._record_kubernetes(
                context, profile, job, parameters, defer_kwargs={"parameters": parameters}
            )
        finally:
            self._runner = None

    def execute_complete(
        self,
        context: Any,
        event: dict[str, Any],
        reattached: bool = False,
        parameters: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Resume after the trigger fired: read the driver's log, fail or push the outputs.

        :param context: the task's Airflow context.
        :param event: the trigger's event.
        :param parameters: the job's parameters.
        :param reattached: whether the SparkApplication was adopted from an earlier try.
        """
        from airflow_mlplatform.runners.kube_job import KubeJob
        from airflow_mlplatform.specs.spark import SPARK_KIND

        job = KubeJob.from_event(
            SPARK_KIND,
            event,
            kubernetes_conn_id=self.kubernetes_conn_id,
            log=self.log,
            delete_policy=self.delete_policy,
        )
        return self._record_kubernetes(
            context, self._profile(), job, parameters or {}, event=event, reattached=reattached
        )

    def _record_kubernetes(
        self, context: Any, profile: Any, job: Any, parameters: Mapping[str, Any], **how: Any
    ) -> dict[str, Any]:
        """Run or defer the SparkApplication (or read it after the trigger: ``event=``) and record it."""
        from airflow_mlplatform.runners.kube_job import run_job_recorded

        return run_job_recorded(
            self,
            context,
            job,
            where={
                "backend": "kubernetes",
                "kind": "SparkApplication",
                "driver_pod": f"{job.name}-driver",
                "executors": self.executors,
            },
            parameters=parameters,
            code={
                "application": self.application,
                "type": self.application_type,
                "main_class": self.main_class,
            },
            environment={"image": profile.image, "profile": profile.name},
            **how,
        )

    def on_kill(self) -> None:
        """Kill spark-submit's process group, or delete the SparkApplication."""
        runner = self._runner
        if runner is not None:
            runner.kill()  # ProcessRunner (worker) or KubeJob (deletes the SparkApplication)
