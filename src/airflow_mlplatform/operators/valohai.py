"""Operators for Valohai executions: submit one and wait for it, and download outputs.

``ValohaiSubmitExecutionOperator`` submits an execution of a step of a project's
valohai.yaml, waits for it (in the triggerer with ``deferrable=True``, else in the worker)
and pushes the value contract's XComs: ``return_value`` = ``{output file: "datum://id"}``
(pass it, or one item, straight to the next execution's ``inputs``), ``metrics`` (the
execution's last value per metadata key) and ``execution_record``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, BaseOperatorLink

from airflow_mlplatform.config import default_deferrable
from airflow_mlplatform.exceptions import (
    ConfigurationError,
    ValohaiError,
    ValohaiExecutionFailedError,
)
from airflow_mlplatform.lineage import LineageMixin
from airflow_mlplatform.parameters import FiniteRenderedParameters
from airflow_mlplatform.valohai_checks import check_submission
from airflow_mlplatform.valohai_payloads import (
    SUCCESS,
    execution_payload,
    normalize_inputs,
    output_values,
    task_tags,
    try_tag,
)

#: XCom key of ``{"id", "counter", "url"}`` of the execution a task submitted (pushed before waiting).
EXECUTION_XCOM_KEY = "valohai_execution"


class ValohaiExecutionLink(BaseOperatorLink):
    """Link from a task to its execution's page in Valohai's web UI."""

    name = "Valohai execution"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The execution's UI URL, or '' before the task submitted one.

        :param operator: the operator.
        :param ti_key: the task instance key.
        """
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=EXECUTION_XCOM_KEY)
        return str(value.get("url") or "") if isinstance(value, dict) else ""


def _deferrable(value: bool | None) -> bool:
    return bool(value) if value is not None else default_deferrable()


#: Why a NaN/Infinity parameter cannot be submitted (the error says it, before anything is submitted).
_NO_NON_FINITE = "Valohai's API takes JSON, which has no NaN or Infinity, so it cannot be submitted"


def _hook(conn_id: str, hook_kwargs: Mapping[str, Any] | None) -> Any:
    from airflow_mlplatform.hooks.valohai import ValohaiHook

    return ValohaiHook(conn_id, **dict(hook_kwargs or {}))


class ValohaiSubmitExecutionOperator(LineageMixin, FiniteRenderedParameters, BaseOperator):
    """Submit a Valohai execution, wait until it finishes, push its outputs, metrics and record.

    :param project: project id or ``owner/name``; None uses the connection's ``project`` extra.
    :param step: step name in the repository's valohai.yaml.
    :param commit: commit identifier or ref (branch, tag); default ``main``.
    :param inputs: ``{input name: URL | [URLs] | upstream outputs dict}``; URLs may be
        ``s3://``, ``gs://``, ``https://`` or ``datum://<id>`` (what this operator returns).
    :param parameters: step parameters; DAG params are the global ones, these win. NaN and
        Infinity cannot be submitted (Valohai's API is JSON): a clear error before anything is.
    :param environment: environment slug or id (e.g. ``aws-eu-west-1-p2-xlarge``).
    :param image: Docker image overriding the step's image.
    :param environment_variables: ``{NAME: value}`` for the execution.
    :param tags: extra tags (the task's own ``airflow-*`` tags are always added).
    :param title: execution title (default ``dag_id.task_id``).
    :param time_limit: seconds after which Valohai itself stops the execution.
    :param valohai_conn_id: the ``valohai`` connection.
    :param deferrable: wait in the triggerer instead of the worker (default: ``[operators]
        default_deferrable``, read when the task runs).
    :param fetch_repository: ask Valohai to fetch the repository first (for a just-pushed commit).
    :param valohai_yaml: path of the repository's valohai.yaml; when given, an unknown step,
        parameter or input, a parameter value its definition refuses (type, min/max,
        choices, multiple) and an error from valohai-yaml's linter on the submitted step
        are errors before anything is submitted (lint warnings are logged), and DAG params
        that the step does not declare are left out.
    :param include_dag_params: pass DAG params as global parameters.
    :param timeout: seconds to wait for the execution before stopping it and failing
        (default: the task's ``execution_timeout``, else no limit).
    :param poll_interval: first wait between status polls, seconds.
    :param max_poll_interval: longest wait between status polls, seconds.
    :param fetch_metric_series: read the whole metrics series into the execution record
        (one more request); the summary always comes with the execution.
    :param reattach: on a retry, re-attach to this task's still-running execution instead of
        submitting another.
    :param hook_kwargs: extra ValohaiHook arguments (timeout, retries, backoff, backoff_max).
    """

    template_fields: Sequence[str] = (
        "project",
        "step",
        "commit",
        "inputs",
        "parameters",
        "environment",
        "image",
        "environment_variables",
        "tags",
        "title",
        "time_limit",
        "valohai_conn_id",
        "valohai_yaml",
    )
    template_fields_renderers = {"parameters": "json", "inputs": "json", "environment_variables": "json"}
    operator_extra_links = (ValohaiExecutionLink(),)
    ui_color = "#ffd8b1"

    def __init__(
        self,
        *,
        project: str | None = None,
        step: str,
        commit: str | None = None,
        inputs: Mapping[str, Any] | None = None,
        parameters: Mapping[str, Any] | None = None,
        environment: str | None = None,
        image: str | None = None,
        environment_variables: Mapping[str, Any] | None = None,
        tags: Sequence[str] | None = None,
        title: str | None = None,
        time_limit: int | None = None,
        valohai_conn_id: str = "valohai_default",
        deferrable: bool | None = None,
        fetch_repository: bool = False,
        valohai_yaml: str | None = None,
        include_dag_params: bool = True,
        timeout: float | None = None,
        poll_interval: float = 5.0,
        max_poll_interval: float = 90.0,
        fetch_metric_series: bool = True,
        reattach: bool = True,
        hook_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.project = project
        self.step = step
        self.commit = commit
        self.inputs = inputs
        self.parameters = parameters
        self.environment = environment
        self.image = image
        self.environment_variables = environment_variables
        self.tags = tags
        self.title = title
        self.time_limit = time_limit
        self.valohai_conn_id = valohai_conn_id
        self.deferrable = deferrable
        self.fetch_repository = fetch_repository
        self.valohai_yaml = valohai_yaml
        self.include_dag_params = include_dag_params
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.fetch_metric_series = fetch_metric_series
        self.reattach = reattach
        self.hook_kwargs = dict(hook_kwargs or {})
        self._execution_id: str | None = None

    # --- submit -----------------------------------------------------------------
    def _parameters(self, context: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
        from airflow_mlplatform.parameters import check_json, dag_params, refuse_non_finite, unwrap_non_finite

        local = check_json(unwrap_non_finite(dict(self.parameters or {})))
        refuse_non_finite(local, what="Valohai parameter", why=_NO_NON_FINITE)
        inputs = normalize_inputs(self.inputs)
        globals_ = dag_params(context) if self.include_dag_params else {}
        if self.valohai_yaml:
            path = Path(self.valohai_yaml)
            if not path.is_file():
                raise ConfigurationError(
                    f"valohai_yaml {self.valohai_yaml!r} does not exist; pass the file's path"
                )
            declared = check_submission(path.read_text(), step=self.step, parameters=local, inputs=inputs, global_parameters=globals_, environment=self.environment, image=self.image)  # fmt: skip
            globals_ = {k: v for k, v in globals_.items() if k in declared}
        refuse_non_finite(
            {k: v for k, v in globals_.items() if k not in local},
            what="Valohai parameter (a DAG param)",
            why=_NO_NON_FINITE,
        )
        return check_json({**globals_, **local}), inputs

    def _wait_timeout(self) -> float | None:
        if self.timeout is not None:
            return float(self.timeout)
        if isinstance(self.execution_timeout, timedelta):
            return self.execution_timeout.total_seconds()
        return None

    def execute(self, context: Any) -> Any:
        from airflow_mlplatform.execution_record import task_identity

        parameters, inputs = self._parameters(context)
        hook = _hook(self.valohai_conn_id, self.hook_kwargs)
        project_id = hook.resolve_project(self.project)
        identity = task_identity(context)
        tags = task_tags(identity)
        execution = None
        if self.reattach and (identity.get("try_number") or 1) > 1:
            running = hook.find_executions(project_id, tags, in_progress_only=True)
            if running:
                execution = running[0]
                self.log.info(
                    "re-attaching to running execution #%s (%s)", execution.get("counter"), execution["id"]
                )
        if execution is None:
            if self.fetch_repository:
                hook.fetch_repository(project_id)
            payload = execution_payload(
                project_id=project_id,
                commit=self.commit or "main",
                step=self.step,
                inputs=inputs,
                parameters=parameters,
                environment=self.environment,
                image=self.image,
                environment_variables=self.environment_variables,
                tags=[*tags, try_tag(identity), *(self.tags or [])],
                title=self.title or f"{identity['dag_id']}.{identity['task_id']}",
                time_limit=self.time_limit,
            )
            execution = hook.create_execution(payload, find_tags=[*tags, try_tag(identity)])
        self._execution_id = str(execution["id"])
        url = (execution.get("urls") or {}).get("display") or ""
        context["ti"].xcom_push(
            key=EXECUTION_XCOM_KEY,
            value={"id": self._execution_id, "counter": execution.get("counter"), "url": url},
        )
        self.log.info("Valohai execution #%s of step %r: %s", execution.get("counter"), self.step, url)
        timeout = self._wait_timeout()
        if _deferrable(self.deferrable):
            from airflow_mlplatform.triggers.valohai import ValohaiExecutionTrigger

            self.defer(
                trigger=ValohaiExecutionTrigger(
                    execution_id=self._execution_id,
                    valohai_conn_id=self.valohai_conn_id,
                    poll_interval=self.poll_interval,
                    max_poll_interval=self.max_poll_interval,
                    deadline=None if timeout is None else time.time() + timeout,
                    hook_kwargs=self.hook_kwargs,
                ),
                method_name="execute_complete",
                kwargs={"started": time.time(), "parameters": parameters, "inputs": inputs},
            )
        started = time.time()

        def wait() -> Mapping[str, Any]:
            try:
                return hook.wait_for_execution(
                    self._execution_id,
                    poll_interval=self.poll_interval,
                    max_poll_interval=self.max_poll_interval,
                    timeout=timeout,
                )
            except TimeoutError as e:
                hook.stop_execution(self._execution_id)
                raise ValohaiExecutionFailedError(
                    f"Valohai execution {self._execution_id} did not finish within {timeout}s and was stopped ({url})"
                ) from e
            except BaseException:  # task timeout / SIGTERM while polling: do not leave it running
                self._stop_quietly(hook)
                raise

        return self._finish(context, hook, wait, started=started, parameters=parameters, inputs=inputs)

    def execute_complete(
        self,
        context: Any,
        event: dict[str, Any],
        started: float | None = None,
        parameters: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
    ) -> Any:
        """Resume after the trigger fired: fail, or push outputs like the synchronous path.

        :param context: the task's context.
        :param event: the trigger's event.
        """
        hook = _hook(self.valohai_conn_id, self.hook_kwargs)
        self._execution_id = str(event.get("execution_id") or (event.get("execution") or {}).get("id") or "")

        def arrived() -> Mapping[str, Any]:
            status = event.get("status")
            if status == "timeout":
                raise ValohaiExecutionFailedError(
                    f"Valohai execution {event.get('execution_id')} did not finish within "
                    f"{self._wait_timeout()}s and was stopped"
                )
            if status != "finished":
                # Valohai could not be asked (after retries). The execution may be fine: when a
                # retry will re-attach to it, leave it running; otherwise stop it.
                try_number = getattr(context["ti"], "try_number", 1) or 1
                will_retry = self.reattach and try_number <= (self.retries or 0)
                if not will_retry:
                    self._stop_quietly(hook)
                raise ValohaiError(
                    f"waiting for Valohai execution {event.get('execution_id')} failed: {event.get('message')}"
                    + ("; the retry will re-attach to it" if will_retry else "; it was stopped")
                )
            execution = event["execution"]
            self._execution_id = str(execution["id"])
            return execution

        return self._finish(
            context,
            hook,
            arrived,
            started=started or time.time(),
            parameters=parameters or {},
            inputs=inputs or {},
        )

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        """Stop the execution when Airflow fails the deferred task (trigger timeout or trigger error)."""
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except Exception as e:
            from airflow.sdk.exceptions import TaskDeferralError, TaskDeferralTimeout

            if isinstance(e, (TaskDeferralError, TaskDeferralTimeout)):
                ref = context["ti"].xcom_pull(task_ids=self.task_id, key=EXECUTION_XCOM_KEY)
                if isinstance(ref, dict) and ref.get("id"):
                    self._execution_id = str(ref["id"])
                    self._stop_quietly(_hook(self.valohai_conn_id, self.hook_kwargs))
            raise

    def _stop_quietly(self, hook: Any) -> None:
        if not self._execution_id:
            return
        try:
            self.log.info("stopping Valohai execution %s", self._execution_id)
            hook.stop_execution(self._execution_id)
        except Exception as e:
            self.log.warning("could not stop Valohai execution %s: %s", self._execution_id, e)

    def on_kill(self) -> None:
        """The task was killed (or timed out) in the worker: stop the execution."""
        self._stop_quietly(_hook(self.valohai_conn_id, self.hook_kwargs))

    # --- results ----------------------------------------------------------------
    def _finish(
        self,
        context: Any,
        hook: Any,
        final: Callable[[], Mapping[str, Any]],
        *,
        started: float,
        parameters: Mapping[str, Any],
        inputs: Mapping[str, Any],
    ) -> Any:
        """Wait for (or take) the finished execution and record it, on success and on failure.

        :param final: returns the finished execution (waits, or reads the trigger's event).
        """
        from datetime import datetime, timezone

        from airflow_mlplatform.jobs import JobRun, run_recorded
        from airflow_mlplatform.storage import OutputFolder, task_output_location
        from airflow_mlplatform.usage import note_valohai
        from airflow_mlplatform.values import JobOutputs, summarize_metrics

        seen: dict[str, Any] = {}
        outputs: dict[str, Any] = {}  # filled once the outputs are known (read when recording)
        recorded_parameters, recorded_inputs = dict(parameters), dict(inputs)  # Valohai's, once known
        code: dict[str, Any] = {"step": self.step}

        def ran_on() -> dict[str, Any]:
            execution = seen.get("execution") or {}
            return {
                "backend": "valohai",
                "execution_id": str(execution.get("id") or self._execution_id or ""),
                "counter": execution.get("counter"),
                "url": (execution.get("urls") or {}).get("display") or "",
                "status": execution.get("status"),
                "duration_s": execution.get("duration"),
            }

        def job() -> JobRun:
            execution = seen["execution"] = dict(final())
            note_valohai(execution)
            execution_id = str(execution["id"])
            if execution.get("parameters"):
                recorded_parameters.clear()
                recorded_parameters.update(execution["parameters"])
            if execution.get("inputs"):
                recorded_inputs.clear()
                recorded_inputs.update(execution["inputs"])
            status = execution.get("status")
            commit = execution.get("commit") or {}
            env = execution.get("environment") or {}
            code.update(
                step=execution.get("step"),
                commit=commit.get("identifier") if isinstance(commit, dict) else commit,
                ref=commit.get("ref") if isinstance(commit, dict) else None,
            )
            seen["environment"] = {
                "environment": env.get("name") if isinstance(env, dict) else env,
                "image": execution.get("image"),
            }
            if status != SUCCESS:
                tail = hook.get_log_tail(execution_id)
                log = "\n".join(f"    {line}" for line in tail) or "    (no log lines)"
                raise ValohaiExecutionFailedError(
                    f"Valohai execution #{execution.get('counter')} of step {execution.get('step')!r} ended "
                    f"{status!r} ({ran_on()['url']}). Last log lines:\n{log}"
                )
            datums = execution.get("outputs")
            if datums is None:
                datums = hook.list_outputs(execution_id)
            values = output_values(datums)
            summary = dict(execution.get("cumulative_metadata") or {})
            rows = hook.get_metadata(execution_id) if self.fetch_metric_series else []
            outputs.update({d["name"]: {"datum": f"datum://{d['id']}", "uri": d.get("uri")} for d in datums})
            self.log.info("execution #%s complete; outputs: %s", execution.get("counter"), ", ".join(values))
            return JobRun(
                outputs=JobOutputs(values=values, metric_rows=list(rows)),
                environment=seen["environment"],
                ran_on=ran_on(),
                metrics=summary or summarize_metrics(rows),
            )

        return run_recorded(
            context,
            job=job,
            folder=OutputFolder(task_output_location(context)),
            parameters=recorded_parameters,
            code=code,
            environment={},
            outputs=outputs,
            inputs=recorded_inputs,
            in_worker=False,
            ran_on=ran_on,
            started=datetime.fromtimestamp(started, timezone.utc),
        )


def redact_url(url: str) -> str:
    """``url`` without its query string and fragment, for errors and logs.

    A signed download URL's query string is a temporary credential (signature, token).

    :param url: any URL.
    """
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # user:password@ is a credential too
    return urlunsplit((parts.scheme, host, parts.path, "<redacted>" if parts.query else "", ""))


def _names(names: str | Sequence[str] | None) -> list[str] | None:
    """A list of output names from a list, one name, or a comma-separated string (Jinja)."""
    if names is None:
        return None
    if isinstance(names, str):
        return [n.strip() for n in names.split(",") if n.strip()] or None
    return [str(n) for n in names] or None


class ValohaiDownloadOutputsOperator(LineageMixin, BaseOperator):
    """Copy a Valohai execution's output files to an ObjectStoragePath folder.

    Returns ``{output name: destination URI}`` (``/`` in a name written ``__``, as the submitting
    operator's values), and pushes an ``execution_record`` of what was copied from where to where
    (datum, source URI, destination, size, sha256). Signed download URLs are temporary
    credentials: errors and logs show them without their query string.

    :param execution: execution id (or ``project_id:counter``), e.g. from the submitting
        task's ``valohai_execution`` XCom (``{{ ti.xcom_pull('train', key='valohai_execution')['id'] }}``).
    :param destination: folder path or URI (``s3://``, ``file://``, a local path).
    :param names: only these output names (default: all): a list, or a string holding one name
        or a comma-separated list (what a Jinja template renders to), e.g. ``"model.pkl,plots/loss.png"``.
    :param valohai_conn_id: the ``valohai`` connection.
    :param hook_kwargs: extra ValohaiHook arguments.
    """

    template_fields: Sequence[str] = ("execution", "destination", "names", "valohai_conn_id")

    def __init__(
        self,
        *,
        execution: str,
        destination: str,
        names: str | Sequence[str] | None = None,
        valohai_conn_id: str = "valohai_default",
        hook_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.execution = execution
        self.destination = destination
        self.names = names
        self.valohai_conn_id = valohai_conn_id
        self.hook_kwargs = dict(hook_kwargs or {})

    def execute(self, context: Any) -> Any:
        from airflow.sdk import ObjectStoragePath

        from airflow_mlplatform.jobs import JobRun, run_recorded
        from airflow_mlplatform.storage import OutputFolder, task_output_location
        from airflow_mlplatform.usage import note_valohai
        from airflow_mlplatform.valohai_payloads import output_keys
        from airflow_mlplatform.values import JobOutputs

        hook = _hook(self.valohai_conn_id, self.hook_kwargs)
        names = _names(self.names)
        dest = ObjectStoragePath(
            self.destination if "://" in self.destination else f"file://{Path(self.destination).resolve()}"
        )
        seen: dict[str, Any] = {}
        files: dict[str, Any] = {}  # the record's outputs, filled as files are copied
        inputs: dict[str, Any] = {}

        def ran_on() -> dict[str, Any]:
            execution = seen.get("execution") or {}
            return {
                "backend": "valohai-download",
                "execution_id": str(execution.get("id") or self.execution),
                "counter": execution.get("counter"),
                "url": (execution.get("urls") or {}).get("display") or "",
            }

        def job() -> JobRun:
            execution = seen["execution"] = hook.get_execution(str(self.execution))
            note_valohai(execution)
            datums = hook.list_outputs(str(execution["id"]))
            if names:
                missing = sorted(set(names) - {d["name"] for d in datums})
                if missing:
                    raise ValohaiError(
                        f"execution {execution['id']} has no output {', '.join(map(repr, missing))} "
                        f"(it has: {', '.join(sorted(d['name'] for d in datums)) or 'none'})"
                    )
                datums = [d for d in datums if d["name"] in set(names)]
            inputs.update(
                {
                    str(d["name"]): {
                        "datum": f"datum://{d['id']}",
                        "uri": d.get("uri"),
                        "size": d.get("size"),
                    }
                    for d in datums
                }
            )
            keys = output_keys(str(d["name"]) for d in datums)
            copied: dict[str, str] = {}
            for datum in datums:
                name = str(datum["name"])
                target = dest / name
                size, sha256 = self._copy(hook, str(datum["id"]), name, target)
                copied[keys[name]] = str(target)
                files[name] = {"uri": str(target), "size": size, "sha256": sha256}
                self.log.info("output %s (%d bytes) copied to %s", name, size, target)
            return JobRun(
                outputs=JobOutputs(values=copied),
                environment={"step": execution.get("step"), "execution_id": str(execution["id"])},
                ran_on=ran_on(),
            )

        return run_recorded(
            context,
            job=job,
            folder=OutputFolder(task_output_location(context)),
            parameters={"names": names, "destination": str(dest)},
            code={"execution": str(self.execution)},
            environment={},
            outputs=files,
            inputs=inputs,
            in_worker=False,
            ran_on=ran_on,
        )

    def _copy(self, hook: Any, datum_id: str, name: str, target: Any) -> tuple[int, str]:
        """Stream one datum to ``target``; returns ``(bytes, sha256)``. Errors hide the signed URL."""
        import hashlib

        import requests

        signed = hook.download_url(datum_id)
        shown = redact_url(signed)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        try:
            # The signed URL carries its own authorization: never send the API token there.
            with requests.get(signed, stream=True, timeout=hook.timeout) as resp:
                if resp.status_code >= 400:
                    raise ValohaiError(
                        f"downloading output {name!r} (datum {datum_id}) from {shown} failed: "
                        f"HTTP {resp.status_code} {resp.reason or ''}".rstrip()
                    )
                with target.open("wb") as out:
                    for chunk in iter(lambda: resp.raw.read(1 << 20), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
        except requests.RequestException as e:
            # requests' messages carry the full URL (query string included): not chained.
            raise ValohaiError(
                f"downloading output {name!r} (datum {datum_id}) from {shown} failed: {type(e).__name__}"
            ) from None
        return size, digest.hexdigest()
