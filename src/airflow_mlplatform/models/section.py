"""The execution record's optional ``models`` section, gathered while a task runs.

``{"used": [{"name", "alias", "version", "uri"}], "registered": [{"name", "version", "uri"}]}``:
model references resolved for the task, model versions it registered. Kept in the task's
context (Airflow hands the same dict to rendering and to ``execute``); every note is also
pushed as XCom ``models_used`` / ``models_registered``, so tasks that do not write a record
say which model they used too.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

_KEY = "_mlplatform_models"
KINDS = ("used", "registered")


def note(context: Mapping[str, Any], kind: str, entry: Mapping[str, Any]) -> None:
    """Add ``entry`` to the task's ``models[kind]`` (once) and push the list to XCom.

    :param context: the task's Airflow context.
    :param kind: ``used`` or ``registered``.
    :param entry: the model version's description.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if not isinstance(context, MutableMapping):
        return
    models = context.setdefault(_KEY, {})
    entries = models.setdefault(kind, [])
    if dict(entry) not in entries:
        entries.append(dict(entry))
    ti = context.get("ti")
    if ti is not None:
        ti.xcom_push(key=f"models_{kind}", value=list(entries))


def section(context: Mapping[str, Any]) -> dict[str, Any] | None:
    """The record's ``models`` section, or None when the task used and registered no model.

    :param context: the task's Airflow context.
    """
    models = context.get(_KEY) if isinstance(context, Mapping) else None
    if not models:
        return None
    return {kind: list(models.get(kind, [])) for kind in KINDS}
