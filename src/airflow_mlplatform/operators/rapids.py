"""RapidsDaskOperator: a Python callable or a script on a Dask cluster (CPU, or GPU with RAPIDS)."""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from airflow.sdk import BaseOperator

from airflow_mlplatform.config import default_deferrable
from airflow_mlplatform.lineage import LineageMixin
from airflow_mlplatform.parameters import FiniteRenderedParameters

CLUSTERS = ("local", "address", "kubernetes")
PARAMETERS_ENV = "MLPLATFORM_PARAMETERS"
LIBRARIES_ENV = "MLPLATFORM_DASK_LIBRARIES"
#: Name under which a callable's non-dict return value is recorded.
RESULT_NAME = "result"


class _Tee:
    """stdout of the callable: passed through, and parsed for record() lines and metrics.

    A text stream like the one it wraps: ``fileno`` (the real stream's, for subprocess and
    faulthandler), ``encoding``, ``isatty``... come from the wrapped stream; only what is
    written through ``write``/``writelines`` reaches the parser.
    """

    def __init__(self, target: Any, parser: Any) -> None:
        self._target = target
        self._parser = parser

    def write(self, text: str) -> int:
        self._parser.feed(text)
        return self._target.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._target.flush()

    def fileno(self) -> int:
        return int(self._target.fileno())

    def isatty(self) -> bool:
        return bool(getattr(self._target, "isatty", lambda: False)())

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return bool(getattr(self._target, "closed", False))

    def __getattr__(self, name: str) -> Any:  # encoding, errors, buffer, newlines...
        return getattr(self._target, name)


class RapidsDaskOperator(LineageMixin, FiniteRenderedParameters, BaseOperator):
    """Run a Python callable or a script on a Dask cluster and push what it produced.

    A **callable** runs in the Airflow worker with a ``distributed.Client`` connected to the
    cluster as the default client: Dask collections it computes, and scikit-learn under
    ``joblib.parallel_backend("dask")``, run on the cluster's workers. Its return value is
    the recorded value: a dict (str keys) gives one named value per key, anything else is
    recorded as ``result``; it must be JSON-serializable (large data: write it under
    ``airflow_mlplatform.runtime.output_dir()`` and return the path/URI). If the callable has a
    ``client`` or ``parameters`` parameter it receives the client or the merged parameters.

    A **script** runs as a process with ``DASK_SCHEDULER_ADDRESS`` set (as in a DaskJob's
    runner pod), parameters as JSON in ``MLPLATFORM_PARAMETERS``; it records values with
    ``airflow_mlplatform.runtime.record`` and prints metrics as JSON lines.

    On a GPU cluster (``local`` with dask-cuda and GPUs: LocalCUDACluster, one worker per GPU)
    Dask's dataframe/array backends are cudf/cupy, else pandas/numpy; the log says which, and
    scripts get it in ``MLPLATFORM_DASK_LIBRARIES``. A cluster the task created is always torn
    down: on success, failure, kill and timeout.

    :param python_callable: the function to run (exactly one of python_callable and script).
    :param script: path of a Python script (templated); relative paths are taken from the DAG
        file's folder.
    :param op_args: positional arguments of the callable (templated).
    :param op_kwargs: keyword arguments of the callable (templated).
    :param cluster: ``local`` (a cluster per task in the worker), ``address`` (an existing
        scheduler, or a dask-gateway server: ``dask_conn_id`` or ``address``; on a gateway the task
        connects to the connection's ``cluster_name`` or creates a cluster it shuts down) or ``kubernetes`` (an ephemeral DaskCluster per
        task through the Dask Kubernetes operator; workers from the ``compute`` profile).
    :param n_workers: workers of a ``local`` cluster (default: one per core, or one per GPU), or of
        a gateway cluster the task creates (default: the connection's ``n_workers``, else 2).
    :param compute: compute profile of the workers (for ``kubernetes``).
    :param dask_conn_id: an Airflow connection of type ``dask`` (templated).
    :param address: a scheduler address ``tcp://host:8786``, or a gateway ``http(s)://host:8000``
        (templated); wins over the connection.
    :param parameters: local parameters (templated), overlaid on the DAG params.
    :param include_dag_params: pass the DAG-level params too (default True).
    :param threads_per_worker: threads per local worker.
    :param connect_timeout: seconds to reach an existing scheduler or gateway (default: connection's,
        else 10); also the wait for a new gateway cluster's workers (default 60).
    :param env: extra environment variables of a script (templated).
    :param cwd: working folder of a script (templated); default: the script's folder.
    :param grace_period: seconds between SIGTERM and SIGKILL when a script is stopped.
    :param namespace: kubernetes: namespace of the DaskCluster (templated); default the profile's,
        else the connection's.
    :param kubernetes_conn_id: kubernetes: the Kubernetes connection (templated).
    :param startup_timeout: kubernetes: seconds for the DaskCluster (or a script's DaskJob) to run
        after it was created (None: 600); then the task fails and says what to check.
    :param deferrable: kubernetes with a script: wait for the DaskJob in the triggerer (its
        runner's log shown there live); default ``[operators] default_deferrable``. A callable
        needs its client in the worker and never defers.
    """

    template_fields: Sequence[str] = (
        "script",
        "op_args",
        "op_kwargs",
        "parameters",
        "dask_conn_id",
        "address",
        "env",
        "cwd",
        "namespace",
        "kubernetes_conn_id",
    )
    template_ext: Sequence[str] = ()
    template_fields_renderers: ClassVar[dict[str, str]] = {"parameters": "json", "op_kwargs": "py"}
    ui_color = "#c8e6c9"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any] | None = None,
        script: str | None = None,
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        cluster: str = "local",
        n_workers: int | None = None,
        compute: str | None = None,
        dask_conn_id: str | None = None,
        address: str | None = None,
        parameters: Mapping[str, Any] | None = None,
        include_dag_params: bool = True,
        threads_per_worker: int | None = None,
        connect_timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        grace_period: float = 5.0,
        namespace: str | None = None,
        kubernetes_conn_id: str = "kubernetes_default",
        startup_timeout: float | None = None,
        deferrable: bool | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.script = script
        self.op_args = op_args
        self.op_kwargs = op_kwargs
        self.cluster = cluster
        self.n_workers = n_workers
        self.compute = compute
        self.dask_conn_id = dask_conn_id
        self.address = address
        self.parameters = parameters
        self.include_dag_params = include_dag_params
        self.threads_per_worker = threads_per_worker
        self.connect_timeout = connect_timeout
        self.env = env
        self.cwd = cwd
        self.grace_period = grace_period
        self.namespace = namespace
        self.kubernetes_conn_id = kubernetes_conn_id
        self.startup_timeout = startup_timeout
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self._session: Any = None
        self._process: Any = None
        self._check_at_parse_time()

    def _check_at_parse_time(self) -> None:
        """Cheap checks when the DAG file is parsed: the cluster kind and the compute profile."""
        from airflow_mlplatform.compute import resolve_compute
        from airflow_mlplatform.exceptions import ConfigurationError

        templated = isinstance(self.cluster, str) and ("{{" in self.cluster or "{%" in self.cluster)
        if not templated and self.cluster not in CLUSTERS:
            raise ConfigurationError(
                f"task {self.task_id!r}: cluster {self.cluster!r} is unknown; use one of {', '.join(CLUSTERS)}"
            )
        resolve_compute(self.compute)

    # -- checks, before anything is created ---------------------------------------------------
    def _check(self) -> str | None:
        """Every input check; returns the resolved script path (or None for a callable)."""
        from airflow_mlplatform.exceptions import ConfigurationError, JobDefinitionError, ScriptNotFoundError

        if (self.python_callable is None) == (self.script is None):
            given = "both" if self.python_callable is not None else "neither"
            raise JobDefinitionError(
                f"task {self.task_id!r}: give exactly one of python_callable= and script= ({given} given)"
            )
        if self.python_callable is not None and not callable(self.python_callable):
            raise JobDefinitionError(
                f"task {self.task_id!r}: python_callable must be callable, got {type(self.python_callable).__name__}"
            )
        if self.cluster not in CLUSTERS:
            raise ConfigurationError(
                f"task {self.task_id!r}: cluster {self.cluster!r} is unknown; use one of {', '.join(CLUSTERS)}"
            )
        if self.n_workers is not None and (
            isinstance(self.n_workers, bool) or not isinstance(self.n_workers, int) or self.n_workers < 1
        ):
            raise JobDefinitionError(
                f"task {self.task_id!r}: n_workers must be an integer >= 1, got {self.n_workers!r}"
            )
        if self.cluster == "address" and not (self.address or self.dask_conn_id):
            raise ConfigurationError(
                f"task {self.task_id!r}: cluster='address' needs dask_conn_id= (a connection of type "
                "'dask') or address='tcp://HOST:8786'"
            )
        if self.script is None:
            return None
        script = self._resolve(self.script)
        if not os.path.isfile(script):
            raise ScriptNotFoundError(
                f"task {self.task_id!r}: the script {script} does not exist; fix script="
            )
        return script

    def _resolve(self, path: str) -> str:
        if os.path.isabs(path):
            return path
        fileloc = getattr(self.dag, "fileloc", None) if self.has_dag() else None
        base = Path(fileloc).parent if fileloc else Path.cwd()
        return str((base / path).resolve())

    def _kube_daskjob(self, context: Any, script: str, parameters: Mapping[str, Any]) -> Any:
        """A DaskJob running ``script`` in its runner pod (same image, path inside it as given)."""
        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook
        from airflow_mlplatform.runners.kube_job import KubeJob, job_deadline
        from airflow_mlplatform.specs import daskjob
        from airflow_mlplatform.specs import pod as podspec
        from airflow_mlplatform.specs.kinds import object_name

        profile, worker_pod, scheduler_pod = self._kube_pods()
        identity = er.task_identity(context)
        gpu = daskjob.is_gpu_pod(worker_pod)
        namespace = self.namespace or profile.namespace
        manifest = daskjob.build_daskjob(  # every check of the manifest, before anything is created
            name=object_name(daskjob.DASKJOB_KIND, identity),
            namespace=namespace or "default",
            image=profile.image,
            command=["python", script],
            n_workers=self.n_workers or 2,
            env={
                "DASK_DATAFRAME__BACKEND": "cudf" if gpu else "pandas",
                "DASK_ARRAY__BACKEND": "cupy" if gpu else "numpy",
                **{str(k): str(v) for k, v in (self.env or {}).items()},
            },
            provider_env={
                PARAMETERS_ENV: json.dumps(parameters),
                LIBRARIES_ENV: "cudf/cupy" if gpu else "pandas/numpy",
            },
            labels=podspec.identity_labels(identity),
            annotations=podspec.identity_annotations(identity),
            runner_pod=scheduler_pod,
            scheduler_pod=scheduler_pod,
            worker_pod=worker_pod,
            working_dir=self.cwd,
        )
        hook = MLPlatformKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)
        if namespace is None:
            manifest["metadata"]["namespace"] = hook.default_namespace()
        return KubeJob(
            daskjob.DASKJOB_KIND,
            manifest,
            selector=podspec.identity_selector(identity),
            kubernetes_conn_id=self.kubernetes_conn_id,
            hook=hook,
            log=self.log,
            startup_timeout=self.startup_timeout,
            deadline=job_deadline(operator=self, context=context),
        )

    def _kube_pods(self) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """The compute profile and the worker's and scheduler's (and runner's) pod fields."""
        from airflow_mlplatform.compute import resolve_compute
        from airflow_mlplatform.exceptions import ConfigurationError
        from airflow_mlplatform.specs.pod_template import pod_fields as pod_fields_from_profile

        profile = resolve_compute(self.compute)
        if profile is None or not profile.image:
            raise ConfigurationError(
                f"task {self.task_id!r}: cluster='kubernetes' needs compute= naming a profile with an image "
                "(the image of the scheduler and workers: dask + distributed, RAPIDS for GPU workers)"
            )
        worker_pod = pod_fields_from_profile(profile, kueue_pods=True)  # no Kueue integration for Dask kinds
        scheduler_pod = {
            k: v for k, v in worker_pod.items() if k not in ("resources", "node_selector", "tolerations")
        }
        return profile, worker_pod, scheduler_pod

    def _kube_cluster(self, context: Any) -> Any:
        """A DaskCluster for this try: manifest built and checked here, created by the session."""
        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform.hooks.kubernetes import MLPlatformKubernetesHook
        from airflow_mlplatform.runners.dask_kubernetes import KubeDaskCluster, cluster_name
        from airflow_mlplatform.specs import daskjob
        from airflow_mlplatform.specs import pod as podspec

        profile, worker_pod, scheduler_pod = self._kube_pods()
        identity = er.task_identity(context)
        namespace = self.namespace or profile.namespace
        manifest = daskjob.build_daskcluster(  # every check of the manifest, before anything is created
            name=cluster_name(identity),
            namespace=namespace or "default",
            labels=podspec.identity_labels(identity),
            annotations=podspec.identity_annotations(identity),
            image=profile.image,
            n_workers=self.n_workers or 2,
            scheduler_pod=scheduler_pod,
            worker_pod=worker_pod,
        )
        hook = MLPlatformKubernetesHook(kubernetes_conn_id=self.kubernetes_conn_id)
        if namespace is None:
            manifest["metadata"]["namespace"] = hook.default_namespace()
        return KubeDaskCluster(
            hook,
            manifest,
            selector=podspec.identity_selector(identity),
            startup_timeout=self.startup_timeout,
            kubernetes_conn_id=self.kubernetes_conn_id,
            log=self.log,
        )

    def _hook(self) -> Any:
        from airflow_mlplatform.hooks.dask import DaskHook

        return DaskHook(self.dask_conn_id, address=self.address, timeout=self.connect_timeout)

    # -- execute --------------------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, Any]:
        """Check inputs, open the cluster, run the callable or script, tear down, push outputs.

        :param context: the task's Airflow context.
        """
        from airflow_mlplatform import execution_record as er
        from airflow_mlplatform import storage
        from airflow_mlplatform.jobs import JobRun, run_recorded
        from airflow_mlplatform.parameters import merge_parameters
        from airflow_mlplatform.runners.dask_cluster import DaskSession
        from airflow_mlplatform.values import JobOutputs, StreamParser

        script = self._check()
        parameters = merge_parameters(context, self.parameters, include_dag_params=self.include_dag_params)
        if self.cluster == "kubernetes" and script is not None:
            return self._execute_daskjob(context, script, parameters)
        hook = None
        parser = StreamParser()
        kube_cluster = self._kube_cluster(context) if self.cluster == "kubernetes" else None
        if self.cluster == "address":
            from airflow_mlplatform.exceptions import ConfigurationError

            hook = self._hook()
            if script is not None and hook.is_gateway():
                raise ConfigurationError(
                    f"task {self.task_id!r}: a script cannot run against a dask-gateway cluster in this "
                    "version (its process would need the gateway's TLS credentials); use python_callable="
                )
            hook.check()  # unreachable scheduler or gateway, bad credentials: a clear error before anything else
        folder = storage.OutputFolder(storage.task_output_location(context))
        session: Any = DaskSession(
            self.cluster,
            n_workers=self.n_workers,
            threads_per_worker=self.threads_per_worker,
            hook=hook,
            kube_cluster=kube_cluster,
            connect_timeout=self.connect_timeout or 60.0,
            log=self.log,
        )
        self._session = session

        def where() -> dict[str, Any]:
            ran_on = session.info.as_dict() if session.info else {"cluster": self.cluster}
            if kube_cluster is not None:
                ran_on.update(namespace=kube_cluster.job.namespace, daskcluster=kube_cluster.name)
                ran_on["reattached"] = kube_cluster.reattached
            return {**er.where(), **ran_on}

        def run() -> JobRun:
            returned: dict[str, Any] = {}
            try:
                client = session.open()
                assert session.info is not None
                if script is not None:
                    self._run_script(script, client, session.info, parameters, folder, parser)
                else:
                    returned = self._run_callable(client, session.info, parameters, folder, parser)
            finally:
                session.close()  # a cluster the task created is torn down before anything is recorded
                self._session = None
            outputs = parser.close()
            return JobRun(
                outputs=JobOutputs({**outputs.values, **returned}, outputs.metric_rows), ran_on=where()
            )

        return run_recorded(
            context,
            job=run,
            folder=folder,
            parameters=parameters,
            code=self._code(script),
            environment=_versions(),
            outputs={},
            ran_on=where,
            partial=parser.close,
        )

    def _execute_daskjob(self, context: Any, script: str, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """The script in a DaskJob's runner pod, waited for here or (deferrable) in the triggerer."""
        job = self._kube_daskjob(context, script, parameters)
        self._session = job  # on_kill (also during the create) deletes it
        try:
            return self._record_daskjob(
                context, job, script, parameters, defer_kwargs={"script": script, "parameters": parameters}
            )
        finally:
            self._session = None

    def execute_complete(
        self,
        context: Any,
        event: dict[str, Any],
        script: str | None = None,
        parameters: dict[str, Any] | None = None,
        reattached: bool = False,
    ) -> dict[str, Any]:
        """Resume after the trigger fired (a DaskJob): read the runner's log, fail or push the outputs.

        :param context: the task's Airflow context.
        :param event: the trigger's event.
        :param script: the script the DaskJob runs.
        :param parameters: the job's parameters.
        :param reattached: whether the DaskJob was adopted from an earlier try.
        """
        from airflow_mlplatform.parameters import merge_parameters
        from airflow_mlplatform.runners.kube_job import KubeJob
        from airflow_mlplatform.specs import daskjob

        script = script or self._check() or ""
        if parameters is None:
            parameters = merge_parameters(
                context, self.parameters, include_dag_params=self.include_dag_params
            )
        job = KubeJob.from_event(
            daskjob.DASKJOB_KIND, event, kubernetes_conn_id=self.kubernetes_conn_id, log=self.log
        )
        return self._record_daskjob(context, job, script, parameters, event=event, reattached=reattached)

    def _record_daskjob(
        self, context: Any, job: Any, script: str, parameters: Mapping[str, Any], **how: Any
    ) -> dict[str, Any]:
        """Run or defer the DaskJob (or read it after the trigger: ``event=``) and record it."""
        from airflow_mlplatform.runners.kube_job import run_job_recorded
        from airflow_mlplatform.specs import daskjob

        profile, worker_pod, _ = self._kube_pods()
        gpu = daskjob.is_gpu_pod(worker_pod)
        return run_job_recorded(
            self,
            context,
            job,
            where={
                "backend": "kubernetes",
                "cluster": "DaskJob",
                "n_workers": self.n_workers or 2,
                "gpu": gpu,
                "libraries": "cudf/cupy" if gpu else "pandas/numpy",
                "created_by_task": True,
            },
            parameters=parameters,
            code=self._code(script),
            environment={"image": profile.image, "profile": profile.name},
            **how,
        )

    def _run_callable(
        self, client: Any, info: Any, parameters: Mapping[str, Any], folder: Any, parser: Any
    ) -> dict[str, Any]:
        import dask

        from airflow_mlplatform.runners.dask_cluster import backend_config
        from airflow_mlplatform.runtime import OUTPUT_DIR_ENV

        assert self.python_callable is not None
        kwargs = dict(self.op_kwargs or {})
        accepted = _parameter_names(self.python_callable)
        if "client" in accepted:
            kwargs.setdefault("client", client)
        if "parameters" in accepted:
            kwargs.setdefault("parameters", dict(parameters))
        name = getattr(self.python_callable, "__qualname__", repr(self.python_callable))
        self.log.info("Running %s on the Dask cluster", name)
        previous_output = os.environ.get(OUTPUT_DIR_ENV)
        os.environ[OUTPUT_DIR_ENV] = str(folder.path)
        try:
            with (
                dask.config.set(backend_config(info.gpu)),
                contextlib.redirect_stdout(_Tee(sys.stdout, parser)),
            ):
                result = self.python_callable(*(self.op_args or ()), **kwargs)
        finally:
            if previous_output is None:
                os.environ.pop(OUTPUT_DIR_ENV, None)
            else:
                os.environ[OUTPUT_DIR_ENV] = previous_output
        return _as_values(result, name)

    def _run_script(
        self, script: str, client: Any, info: Any, parameters: Mapping[str, Any], folder: Any, parser: Any
    ) -> None:
        from airflow_mlplatform.runners.dask_script import ScriptProcess
        from airflow_mlplatform.runtime import OUTPUT_DIR_ENV

        def on_line(line: str) -> None:
            self.log.info("%s", line)
            parser.feed_line(line)

        env = {
            "DASK_SCHEDULER_ADDRESS": client.scheduler.address,
            PARAMETERS_ENV: json.dumps(parameters),
            LIBRARIES_ENV: info.libraries,
            OUTPUT_DIR_ENV: str(folder.path),
            "DASK_DATAFRAME__BACKEND": "cudf" if info.gpu else "pandas",
            "DASK_ARRAY__BACKEND": "cupy" if info.gpu else "numpy",
            **{str(k): str(v) for k, v in (self.env or {}).items()},
        }
        process = ScriptProcess(
            [sys.executable, script],
            env=env,
            cwd=self.cwd or str(Path(script).parent),
            on_line=on_line,
            grace_period=self.grace_period,
        )
        self._process = process
        self.log.info("Running script %s against the Dask scheduler %s", script, client.scheduler.address)
        try:
            process.run()
        finally:
            self._process = None

    def _code(self, script: str | None) -> dict[str, Any]:
        from airflow_mlplatform import execution_record as er

        if script is not None:
            return {"script": script, "sha256": er.file_sha256(script), "git_commit": er.git_commit(script)}
        fn = self.python_callable
        code: dict[str, Any] = {
            "callable": f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
        }
        with contextlib.suppress(TypeError, OSError):
            import hashlib

            code["source_sha256"] = hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()  # type: ignore[arg-type]
            code["file"] = inspect.getsourcefile(fn)  # type: ignore[arg-type]
        return code

    def on_kill(self) -> None:
        """Stop the script and tear down the cluster this task created."""
        process, session = self._process, self._session
        if process is not None:
            process.stop()
        if session is not None:
            (getattr(session, "close", None) or session.kill)()


def _parameter_names(fn: Callable[..., Any]) -> set[str]:
    try:
        return set(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return set()


def _as_values(result: Any, name: str) -> dict[str, Any]:
    """The callable's return value as named values, checked for JSON now (clear error)."""
    from airflow_mlplatform.exceptions import RecordError

    if result is None:
        return {}
    values = (
        dict(result)
        if isinstance(result, dict) and all(isinstance(k, str) for k in result)
        else {RESULT_NAME: result}
    )
    for key, value in values.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            hint = ""
            module = type(value).__module__
            if module.startswith(("numpy", "cupy")):
                hint = " (convert numpy/cupy values with .item() or .tolist())"
            elif module.startswith(("pandas", "cudf", "dask")):
                hint = " (return df.to_dict() for small frames; write large ones under output_dir() and return the path)"
            raise RecordError(
                f"{name} returned a value for {key!r} of type {type(value).__name__} that is not "
                f"JSON-serializable ({e}){hint}; return plain values, or a path/URI for large data"
            ) from e
    return values


def _versions() -> dict[str, Any]:
    """Versions of the Dask/RAPIDS distributions installed (without importing them)."""
    from importlib import metadata

    out: dict[str, Any] = {}
    for dist in ("dask", "distributed", "dask-cuda", "cudf-cu12", "cupy-cuda12x", "pandas", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return {"packages": out}
