"""Plain Python functions that the example workflows' ``python`` steps call.

The dags folder is on ``sys.path`` in every Airflow process, so a workflow names these as
``workflow_steps:FUNCTION``. A dict return value's keys are the step's outputs.
"""

from __future__ import annotations


def sales_by_region(regions: list[str], units: int = 10) -> dict:
    """Made-up revenue per region (stands in for a query)."""
    revenue = {region: round(units * (i + 1) * 1.5, 2) for i, region in enumerate(sorted(regions))}
    return {"revenue_by_region": revenue, "n_regions": len(revenue)}


def verdict(accuracy: float, threshold: float = 0.8) -> dict:
    """Whether a model is good enough."""
    return {"good": accuracy >= threshold, "accuracy": accuracy}
