"""Model versions in MLflow's registry: register with lineage, resolve references, promote by alias.

Pure helpers build tags and descriptions; the functions here take an :class:`MLflowHook` and
make the client calls. Aliases only (``models:/name@alias``); stages are never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_mlplatform.exceptions import ModelNotFoundError, ModelRegistryError
from airflow_mlplatform.models import ModelRef, ResolvedModel

#: tag holding the registering try's idempotency key
KEY_TAG = "mlplatform.key"
#: tag naming the file inside a version's artifact folder (a single-file model)
FILE_TAG = "mlplatform.artifact_file"
PARAM_PREFIX = "param."
METRIC_PREFIX = "metric."
_MAX_TAG = 5000
_ARTIFACT_PATH = "model"


def _tag(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= _MAX_TAG else text[: _MAX_TAG - 3] + "..."


def lineage_tags(
    *, task: Mapping[str, Any], source_task: str | None, source_record: Mapping[str, Any] | None
) -> dict[str, str]:
    """The version's tags: who registered it, from which try, code, parameters, final metrics.

    :param task: the registering try's identity (dag_id, run_id, task_id, map_index, try_number).
    :param source_task: the task that produced the model.
    :param source_record: that task's execution record (None: not found).
    """
    tags = {f"mlplatform.{k}": _tag(v) for k, v in task.items() if v is not None}
    if source_task:
        tags["mlplatform.source_task"] = source_task
    record = source_record or {}
    src = record.get("task") or {}
    if src.get("try_number") is not None:
        tags["mlplatform.source_try_number"] = _tag(src["try_number"])
    uri = (record.get("outputs") or {}).get("record")
    if uri:
        tags["mlplatform.source_record"] = _tag(uri)
    code = record.get("code") or {}
    for key in ("sha256", "git_commit", "notebook", "script"):
        if code.get(key):
            tags[f"mlplatform.code_{key}"] = _tag(code[key])
    for name, value in (record.get("parameters") or {}).items():
        tags[f"{PARAM_PREFIX}{name}"] = _tag(value)
    for name, value in ((record.get("metrics") or {}).get("summary") or {}).items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            tags[f"{METRIC_PREFIX}{name}"] = repr(float(value))
    return tags


def describe(*, task: Mapping[str, Any], source_task: str | None, tags: Mapping[str, str]) -> str:
    """The version's description (Markdown) from its lineage tags.

    :param task: the registering try's identity.
    :param source_task: the task that produced the model.
    :param tags: :func:`lineage_tags`.
    """
    lines = [
        f"Registered by Airflow task `{task.get('dag_id')}.{task.get('task_id')}` "
        f"(run `{task.get('run_id')}`, try {task.get('try_number')})"
        + (f" from the output of `{source_task}`." if source_task else "."),
    ]
    if "mlplatform.source_record" in tags:
        lines.append(f"- execution record: {tags['mlplatform.source_record']}")
    for key in ("sha256", "git_commit"):
        if f"mlplatform.code_{key}" in tags:
            lines.append(f"- code {key.replace('_', ' ')}: {tags[f'mlplatform.code_{key}']}")
    params = {k[len(PARAM_PREFIX) :]: v for k, v in tags.items() if k.startswith(PARAM_PREFIX)}
    metrics = metrics_of_tags(tags)
    if params:
        lines.append("- parameters: " + ", ".join(f"{k}={v}" for k, v in sorted(params.items())))
    if metrics:
        lines.append("- metrics: " + ", ".join(f"{k}={v:g}" for k, v in sorted(metrics.items())))
    return "\n".join(lines)


def metrics_of_tags(tags: Mapping[str, str]) -> dict[str, float]:
    """A version's final metrics, read back from its ``metric.*`` tags.

    :param tags: the version's tags.
    """
    out: dict[str, float] = {}
    for key, value in tags.items():
        if key.startswith(METRIC_PREFIX):
            try:
                out[key[len(METRIC_PREFIX) :]] = float(value)
            except (TypeError, ValueError):
                continue
    return out


def idempotency_key(task: Mapping[str, Any], *, model_name: str, source: str) -> str:
    """The same for every try of one registering task over the same source output.

    A retry of the registering task reuses the version its earlier try created; a new try of
    the source task (a new record, a new artifact) makes a new version.

    :param task: the registering task's identity.
    :param model_name: the registered model.
    :param source: the source try's record URI (or the artifact's URI when there is none).
    """
    parts = [
        task.get("dag_id"),
        task.get("run_id"),
        task.get("task_id"),
        task.get("map_index"),
        model_name,
        source,
    ]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:32]


def _is_missing(error: Exception) -> bool:
    return (
        getattr(error, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")
        or "not found" in str(error).lower()
    )


def ensure_registered_model(client: Any, name: str) -> None:
    """Create the registered model ``name`` unless it exists (a concurrent creation is fine).

    :param client: an MlflowClient.
    :param name: the model's name.
    """
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, tags={"mlplatform.created_by": "airflow-mlplatform"})
    except MlflowException as e:
        if getattr(e, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise


def find_version(client: Any, name: str, key: str) -> Any:
    """The version of ``name`` registered under idempotency ``key``, or None.

    :param client: an MlflowClient.
    :param name: the model.
    :param key: :func:`idempotency_key`.
    """
    found = client.search_model_versions(f"name = '{name}' and tags.`{KEY_TAG}` = '{key}'")
    return min(found, key=lambda v: int(v.version)) if found else None


@dataclass(frozen=True)
class Registered:
    """A registered model version.

    :param name: the model.
    :param version: its version number (a string, as MLflow gives it).
    :param uri: ``models:/name/version``.
    :param source: where its files are.
    :param run_id: the MLflow run that holds its artifact.
    :param reused: an earlier try of the same task had registered it.
    """

    name: str
    version: str
    uri: str
    source: str
    run_id: str | None
    reused: bool = False

    def entry(self) -> dict[str, Any]:
        """The record's ``models.registered`` entry."""
        return {"name": self.name, "version": self.version, "uri": self.uri}


def register(
    hook: Any,
    *,
    name: str,
    artifact: Path,
    experiment: str,
    key: str,
    tags: Mapping[str, str],
    description: str,
) -> Registered:
    """Upload ``artifact`` (file or folder) into a run and create a version of ``name`` from it.

    :param hook: an MLflowHook.
    :param name: the registered model.
    :param artifact: the model's local file or folder.
    :param experiment: the experiment that gets the registration run (the DAG id).
    :param key: idempotency key: a version tagged with it is returned instead of a new one.
    :param tags: the version's tags (lineage).
    :param description: the version's description.
    """
    client = hook.get_conn()
    ensure_registered_model(client, name)
    existing = find_version(client, name, key)
    if existing is not None:
        return Registered(
            name=name,
            version=str(existing.version),
            uri=f"models:/{name}/{existing.version}",
            source=existing.source,
            run_id=existing.run_id,
            reused=True,
        )
    run = client.create_run(
        hook.experiment_id(experiment),
        run_name=f"register {name}",
        tags={
            "mlplatform.kind": "model-registration",
            **{k: v for k, v in tags.items() if k.startswith("mlplatform.")},
        },
    )
    run_id = run.info.run_id
    version_tags = {**tags, KEY_TAG: key}
    try:
        if artifact.is_dir():
            client.log_artifacts(run_id, str(artifact), artifact_path=_ARTIFACT_PATH)
        else:
            client.log_artifact(run_id, str(artifact), artifact_path=_ARTIFACT_PATH)
            version_tags[FILE_TAG] = artifact.name
        source = f"{run.info.artifact_uri.rstrip('/')}/{_ARTIFACT_PATH}"
        version = client.create_model_version(
            name, source, run_id=run_id, tags=version_tags, description=description
        )
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return Registered(
        name=name,
        version=str(version.version),
        uri=f"models:/{name}/{version.version}",
        source=source,
        run_id=run_id,
    )


def aliases_of(client: Any, name: str) -> dict[str, str]:
    """The model's aliases (alias -> version); a ModelNotFoundError when the model does not exist.

    :param client: an MlflowClient.
    :param name: the registered model.
    """
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
    except MlflowException as e:
        if _is_missing(e):
            raise ModelNotFoundError(
                f"registered model {name!r} does not exist: register a version first "
                "(RegisterModelOperator) or check the name and the mlflow connection"
            ) from e
        raise
    aliases = model.aliases or {}
    return {str(k): str(v) for k, v in dict(aliases).items()}


def version_by_alias(client: Any, name: str, alias: str) -> Any:
    """The version holding ``alias``, or None when no version does (the model must exist).

    :param client: an MlflowClient.
    :param name: the registered model.
    :param alias: the alias.
    """
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as e:
        if _is_missing(e):
            return None
        raise


def _cache_root() -> Path:
    return Path(os.environ.get("MLPLATFORM_MODEL_CACHE") or Path(tempfile.gettempdir()) / "mlplatform-models")


def local_files(hook: Any, version: Any) -> str:
    """A local path of the version's files (its artifact folder, or the one file in it).

    Local sources are used where they are; others are downloaded once into a cache folder.

    :param hook: an MLflowHook.
    :param version: an MLflow ModelVersion.
    """
    from airflow_mlplatform.storage import is_local, local_path

    source = str(version.source)
    if is_local(source) and local_path(source).exists():
        folder = local_path(source)
    else:
        digest = hashlib.sha256(f"{hook.store.tracking_uri} {source}".encode()).hexdigest()[:16]
        folder = _cache_root() / digest / _ARTIFACT_PATH
        if not folder.exists():
            import mlflow.artifacts

            tmp = Path(tempfile.mkdtemp(prefix="dl-", dir=_mkdir(folder.parent.parent)))
            try:
                got = mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=str(tmp), tracking_uri=hook.store.tracking_uri
                )
                _mkdir(folder.parent)
                try:
                    os.replace(got, folder)
                except OSError:
                    if not folder.exists():
                        raise
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    name = (version.tags or {}).get(FILE_TAG)
    return str(folder / name) if name else str(folder)


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def lookup(hook: Any, ref: ModelRef) -> Any:
    """The MLflow ModelVersion that ``ref`` names (by alias or number), nothing downloaded.

    :param hook: an MLflowHook.
    :param ref: the reference.
    :raises ModelNotFoundError: the model, alias or version does not exist (the message lists the
        model's aliases).
    """
    from mlflow.exceptions import MlflowException

    client = hook.get_conn()
    if ref.alias is not None:
        version = version_by_alias(client, ref.name, ref.alias)
        if version is None:
            aliases = aliases_of(client, ref.name)
            known = ", ".join(f"{a} (version {v})" for a, v in sorted(aliases.items())) or "none yet"
            raise ModelNotFoundError(
                f"model {ref.name!r} has no alias {ref.alias!r}; its aliases: {known}. Promote a "
                "version first (PromoteModelOperator) or use one of these aliases"
            )
        return version
    try:
        return client.get_model_version(ref.name, str(ref.version))
    except MlflowException as e:
        if _is_missing(e):
            aliases_of(client, ref.name)  # says when the model itself is missing
            raise ModelNotFoundError(f"model {ref.name!r} has no version {ref.version!r}") from e
        raise


def files_uri(version: Any) -> str:
    """Where a version's files are: its artifact folder, or the one file in it (a model
    registered from a single file), as the registry stores it (``s3://``, ``file://``...).

    :param version: an MLflow ModelVersion.
    """
    source = str(version.source).rstrip("/")
    name = (version.tags or {}).get(FILE_TAG)
    return f"{source}/{name}" if name else source


def resolve(hook: Any, ref: ModelRef) -> ResolvedModel:
    """The local files and version of what ``ref`` names.

    :param hook: an MLflowHook.
    :param ref: the reference.
    """
    version = lookup(hook, ref)
    return ResolvedModel(
        local_files(hook, version),
        name=ref.name,
        alias=ref.alias,
        version=str(version.version),
        uri=f"models:/{ref.name}/{version.version}",
    )


@dataclass(frozen=True)
class Decision:
    """What a promotion decided, and why.

    :param promoted: the alias now points at the candidate.
    :param reason: why (or why not), in a sentence.
    :param previous: the version that held the alias before (None: none did).
    :param metrics: the candidate's metrics.
    :param holder_metrics: the previous holder's metrics.
    """

    promoted: bool
    reason: str
    previous: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    holder_metrics: dict[str, float] = field(default_factory=dict)


def _decide(gate: Any, name: str, alias: str, candidate: Any, holder: Any) -> Decision:
    metrics = metrics_of_tags(candidate.tags or {})
    if holder is None:
        return Decision(
            True, f"no version held alias {alias!r}: the first version is promoted", None, metrics
        )
    held = metrics_of_tags(holder.tags or {})
    previous = str(holder.version)
    if previous == str(candidate.version):
        return Decision(False, f"version {previous} already holds alias {alias!r}", previous, metrics, held)
    if gate is None:
        return Decision(
            True, f"no gate: version {candidate.version} replaces {previous}", previous, metrics, held
        )
    if gate.evaluate(metrics, held):
        why = f"gate {gate.text!r} passed against version {previous}"
        return Decision(True, why + _values(gate, metrics, held, alias), previous, metrics, held)
    why = f"gate {gate.text!r} failed against version {previous}"
    return Decision(False, why + _values(gate, metrics, held, alias), previous, metrics, held)


def _values(gate: Any, metrics: Mapping[str, float], held: Mapping[str, float], alias: str) -> str:
    mine, theirs = gate.names()
    parts = [f"{k}={metrics[k]:g}" for k in sorted(mine) if k in metrics]
    parts += [f"{alias}.{k}={held[k]:g}" for k in sorted(theirs) if k in held]
    return f" ({', '.join(parts)})" if parts else ""


def promote(hook: Any, *, name: str, version: str, alias: str, gate: Any, attempts: int = 5) -> Decision:
    """Point ``alias`` at ``version`` when the gate passes against the current holder.

    On the embedded store the read-decide-set runs under a file lock (one host: atomic); on a
    server the holder is read again just before the alias is set, and the decision is made
    again when it changed; after setting, the alias is read back.

    :param hook: an MLflowHook.
    :param name: the registered model.
    :param version: the candidate version.
    :param alias: the alias (``champion``).
    :param gate: a parsed gate (None: always promote).
    :param attempts: how often to decide again when the holder changes meanwhile.
    """
    import contextlib

    from mlflow.exceptions import MlflowException

    from airflow_mlplatform.hooks.mlflow import file_lock

    client = hook.get_conn()
    try:
        candidate = client.get_model_version(name, str(version))
    except MlflowException as e:
        if _is_missing(e):
            aliases_of(client, name)
            raise ModelNotFoundError(f"model {name!r} has no version {version!r} to promote") from e
        raise
    store = hook.store
    lock = (
        file_lock(Path(store.tracking_uri.removeprefix("sqlite:///")).parent / f".alias-{name}.lock")
        if store.embedded
        else contextlib.nullcontext()
    )
    with lock:
        for _ in range(attempts):
            holder = version_by_alias(client, name, alias)
            decision = _decide(gate, name, alias, candidate, holder)
            if not decision.promoted:
                return decision
            now = version_by_alias(client, name, alias)  # re-check just before setting
            if _version(now) != _version(holder):
                time.sleep(0.05)
                continue
            client.set_registered_model_alias(name, alias, str(candidate.version))
            after = version_by_alias(client, name, alias)
            if _version(after) != str(candidate.version):
                return Decision(
                    False,
                    f"version {_version(after)} was promoted to {alias!r} concurrently, after the gate passed",
                    decision.previous,
                    decision.metrics,
                    decision.holder_metrics,
                )
            return decision
    raise ModelRegistryError(
        f"alias {alias!r} of model {name!r} changed {attempts} times while promoting version {version}: "
        "too many concurrent promotions; retry the task"
    )


def _version(mv: Any) -> str | None:
    return None if mv is None else str(mv.version)
