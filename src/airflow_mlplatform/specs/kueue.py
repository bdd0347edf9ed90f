"""Kueue: which object of each job kind carries a compute profile's queue.

A profile's ``kueue_queue`` names a Kueue LocalQueue (in the job's namespace). Kueue reads the
label :data:`QUEUE_LABEL` where its integration for the kind expects it:

- a plain **pod** (Kueue's ``pod`` integration): on the pod;
- a **TFJob** (Kueue's Kubeflow integration, ``kubeflow.org/tfjob``): on the TFJob only, which
  Kueue suspends and admits as one workload (gang: all replicas or none); not on its pods;
- **DaskJob**, **DaskCluster** and **SparkApplication** have no Kueue integration: the label goes
  on their pods' templates (the runner, scheduler and workers; the driver and executors), which
  Kueue's ``pod`` integration then admits pod by pod (no gang admission), and the top-level object
  is left unlabelled.

A profile's ``labels`` may not set the key themselves (it would land on the wrong object).
"""

from __future__ import annotations

from typing import Any

#: The label Kueue reads (its value is the LocalQueue's name).
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def queue_label(profile: Any) -> dict[str, str]:
    """``{QUEUE_LABEL: queue}`` when the profile names a Kueue queue, else ``{}``.

    :param profile: a :class:`~airflow_mlplatform.compute.ComputeProfile` (or None).
    """
    queue = getattr(profile, "kueue_queue", None)
    return {QUEUE_LABEL: str(queue)} if queue else {}
