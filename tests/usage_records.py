"""Execution records of a made-up platform (version 2, as ``run_recorded`` builds them), written in
the storage layout: for ``mlplatform usage`` tests and benchmarks/bench_usage_report.py."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from airflow_mlplatform import execution_record as er
from airflow_mlplatform import storage, usage
from airflow_mlplatform.compute import ComputeProfile
from airflow_mlplatform.specs import pod as podspec
from airflow_mlplatform.specs.kinds import POD

PROFILES = [
    ComputeProfile(
        name="cpu-small",
        backend="kubernetes",
        image="i",
        requests={"cpu": "2", "memory": "4Gi"},
        labels={"tenant": "research"},
    ),
    ComputeProfile(
        name="gpu-small",
        backend="kubernetes",
        image="i",
        requests={"cpu": "4", "memory": "16Gi"},
        gpus=1,
        node_selector={"nvidia.com/gpu.product": "A100"},
        labels={"tenant": "vision", "cost-centre": "cc-7"},
    ),
]


def record(
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    started: datetime,
    seconds: float,
    profile: ComputeProfile,
    status: str = "success",
) -> dict[str, Any]:
    """One try's record: a pod of ``profile`` that ran ``seconds`` after 10 s pending."""
    manifest = podspec.build_pod(profile, name="p", command=["x"])
    facts = usage.KubeFacts(
        shape=usage.manifest_shape(POD, manifest),
        created=started.timestamp(),
        running=started.timestamp() + 10,
        finished=started.timestamp() + 10 + seconds,
    )
    ended = started + timedelta(seconds=seconds + 12)
    section = usage.usage_section(
        notes=usage.UsageNotes(kube=[facts]),
        profile=profile,
        task_type="MLPlatformPodOperator",
        where={"backend": "kubernetes"},
        started=started,
        ended=ended,
        status=status,
    )
    task = {"dag_id": dag_id, "task_id": task_id, "run_id": run_id, "map_index": -1, "try_number": 1}
    return er.build_record(
        task=task, code={}, environment={"profile": profile.name}, parameters={"lr": 0.1}, values={"acc": 0.9},
        metric_rows=[{"acc": 0.9}], metrics={"acc": 0.9}, outputs={}, started=started, ended=ended,
        ran_on={"backend": "kubernetes"}, status=status, usage=section,
    )  # fmt: skip


def write(base: Path, rec: dict[str, Any]) -> Path:
    """Store ``rec`` where ``run_recorded`` would."""
    t = rec["task"]
    folder = Path(
        storage.output_location(
            dag_id=t["dag_id"],
            run_id=t["run_id"],
            task_id=t["task_id"],
            map_index=None,
            try_number=1,
            base=str(base),
        )
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / er.RECORD_FILE
    path.write_text(json.dumps(rec))
    return path


def platform(base: Path, *, n: int, start: datetime, days: int = 30, dags: int = 1000, seed: int = 7) -> int:
    """Write ``n`` records of ``dags`` DAGs over ``days`` days from ``start``; returns ``n``.

    The records are built once per profile and status and re-stamped (building 100,000 through
    ``build_record`` would dominate a benchmark of reading them).
    """
    rng = random.Random(seed)
    templates = {
        (p.name, s): record(
            dag_id="d", run_id="r", task_id="t", started=start, seconds=60, profile=p, status=s
        )
        for p in PROFILES
        for s in ("success", "failed")
    }
    for i in range(n):
        dag = f"dag_{i % dags:04d}"
        when = start + timedelta(seconds=rng.randrange(days * 86400))
        profile = PROFILES[i % len(PROFILES)]
        rec = json.loads(json.dumps(templates[(profile.name, "failed" if i % 17 == 0 else "success")]))
        run_id = f"scheduled__{when.isoformat()}"
        rec["task"].update(dag_id=dag, run_id=run_id, task_id=f"t{i % 3}")
        rec["timings"]["started"] = when.isoformat()
        rec["usage"]["started"] = when.isoformat()
        write(base, rec)
    return n


START = datetime(2026, 11, 1, tzinfo=timezone.utc)
