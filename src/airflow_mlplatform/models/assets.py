"""The Airflow Asset of a model alias: promoting a version emits an event for it.

A batch-scoring DAG scheduled on ``model_asset("churn", "champion")`` runs when the
champion changes; the event's extra holds the version and its metrics.
"""

from __future__ import annotations

from typing import Any

from airflow_mlplatform.models import check_alias, check_model_name


def model_asset_uri(name: str, alias: str) -> str:
    """``models:/NAME@ALIAS``, MLflow's own URI of the alias.

    :param name: the registered model.
    :param alias: the alias.
    """
    return f"models:/{check_model_name(name)}@{check_alias(alias)}"


def model_asset(name: str, alias: str = "champion") -> Any:
    """The Asset a promotion to ``alias`` emits an event for (schedule a DAG on it).

    :param name: the registered model.
    :param alias: the alias.
    """
    from airflow.sdk import Asset

    return Asset(uri=model_asset_uri(name, alias), name=f"model {name}@{alias}", group="model")


def model_asset_alias(name: str, alias: str) -> Any:
    """The AssetAlias PromoteModelOperator declares as its outlet (an event only when it promotes).

    :param name: the registered model.
    :param alias: the alias.
    """
    from airflow.sdk import AssetAlias

    return AssetAlias(name=f"mlplatform-promotion:{model_asset_uri(name, alias)}", group="model")
