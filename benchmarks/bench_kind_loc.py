"""Lines of code each Kubernetes job kind needs: ``wc -l`` of the source files it runs through.

A kind's files are its spec module(s), its runner(s), its trigger(s) and its operator(s), plus the
shared lifecycle pieces every kind uses (counted once, in the ``shared`` row). Files that do not
exist in the checked-out tree are skipped, so the same script measures before and after a change:

    .venv/bin/python benchmarks/bench_kind_loc.py [--repo DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

PKG = "src/airflow_mlplatform"
#: kind -> files only that kind needs (before and after the one-lifecycle change).
KIND_FILES = {
    "pod": [
        "specs/pod.py",
        "runners/pod.py",
        "runners/pod_log.py",
        "triggers/kubernetes.py",
        "operators/pod.py",
        "operators/_pod_job.py",
    ],
    "tfjob": ["specs/tfjob.py", "runners/tf_kubeflow.py", "triggers/tfjob.py", "operators/tfjob.py"],
    "daskjob": ["specs/daskjob.py", "runners/dask_job.py"],
    "daskcluster": ["specs/daskjob.py", "runners/dask_kubernetes.py"],
    "sparkapplication": ["specs/spark.py", "runners/spark.py", "operators/spark.py"],
}
#: the lifecycle every kind shares after the change (absent before).
SHARED = [
    "specs/kinds.py",
    "specs/pod_template.py",
    "runners/kube_job.py",
    "runners/pod_log.py",
    "triggers/kubernetes.py",
    "hooks/kubernetes.py",
]


def wc(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", default=str(Path(__file__).resolve().parent.parent))
    args = parser.parse_args()
    pkg = Path(args.repo) / PKG
    redesigned = (pkg / "runners/kube_job.py").is_file()
    # Before the change only the hook and the log follower served several kinds.
    shared = [
        f
        for f in SHARED
        if (pkg / f).is_file() and (redesigned or f.startswith(("hooks/", "runners/pod_log")))
    ]
    print(f"{'kind':<18}{'lines':>7}  files (wc -l; shared files counted once, in 'shared')")
    for kind, files in KIND_FILES.items():
        own = [f for f in files if (pkg / f).is_file() and f not in shared]
        print(f"{kind:<18}{sum(wc(pkg / f) for f in own):>7}  {' '.join(own) or '-'}")
    print(f"{'shared':<18}{sum(wc(pkg / f) for f in shared):>7}  {' '.join(shared) or '-'}")


if __name__ == "__main__":
    main()
