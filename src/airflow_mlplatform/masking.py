"""Airflow's own secrets masker, applied to what the provider stores or raises.

Airflow masks secrets in logs and rendered fields; anything else the provider writes (the
execution record in XCom and ``execution_record.json``, error messages built from a remote
API's answer, trigger events) goes through :func:`redact` first, so a value registered with
``mask_secret`` (connection passwords and extras, variables with sensitive names, anything a
task masked) and a value under a sensitive key (``password``, ``token``, ``api_key``...) never
reaches storage in clear.
"""

from __future__ import annotations

from typing import Any


def _masker_redact() -> Any:
    try:
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:  # pragma: no cover - task-sdk before the shared module
        from airflow.sdk.execution_time.secrets_masker import redact  # type: ignore[no-redef]
    return redact


def redact(value: Any, name: str | None = None) -> Any:
    """``value`` with every secret Airflow knows of replaced by ``***`` (structure kept).

    :param value: a string, or dicts and lists of them.
    :param name: the key ``value`` is stored under (a sensitive name hides the whole value).
    """
    return _masker_redact()(value, name)


def mask_secret(secret: str | None) -> None:
    """Register ``secret`` with Airflow's masker (task process and supervisor).

    :param secret: the value to hide from now on (empty: nothing).
    """
    if not secret:
        return
    from airflow.sdk.log import mask_secret as _mask

    _mask(secret)


def redact_text(text: str, *secrets: str | None) -> str:
    """``text`` through the masker, with the given ``secrets`` replaced too (also where the
    masker was never told about them, e.g. in the triggerer).

    :param text: a message.
    :param secrets: values known to be secret here (a token...).
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return str(redact(text))
