"""The ``mlplatform`` OpenLineage run facet. Imports the OpenLineage client at module level:
imported only by :mod:`airflow_mlplatform.lineage`'s methods, when the provider asks."""

from __future__ import annotations

from typing import Any

from attrs import define
from openlineage.client.facet_v2 import RunFacet


@define
class MLPlatformRunFacet(RunFacet):
    """What ran and how it went, from the try's execution record.

    :param status: ``success``, ``failed`` or ``killed``.
    :param parameters: the parameters the job received.
    :param metrics: the final metrics (last value per key).
    :param code: sha256, git commit and the file that ran.
    :param where: where it ran.
    :param record: the execution record's URI.
    """

    status: str | None = None
    parameters: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    code: dict[str, Any] | None = None
    where: dict[str, Any] | None = None
    record: str | None = None
