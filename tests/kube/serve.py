"""Run the test bed (emulator + fake kubelet, and with --kinds the fake controllers) as its own process, for benchmarks.

Prints one JSON line ``{"url": ..., "kubeconfig": ...}`` when ready, then answers commands on
stdin, one per line: ``stats`` (prints request counts by User-Agent, and the total) and ``quit``.
With ``--kinds`` it also serves TFJobs, DaskJobs, DaskClusters and SparkApplications through the fake
training, Dask and Spark operators (they act inside the emulator: no API requests of their own).

    python tests/kube/serve.py [--kinds]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kube.emulator import EmulatorThread
from kube.fixtures import write_kubeconfig
from kube.kubelet import FakeKubelet


def main() -> None:
    kubelet = FakeKubelet()
    controllers: list = [kubelet]
    if "--kinds" in sys.argv[1:]:
        from fake_dask_operator import FakeDaskOperator
        from fake_spark_operator import FakeSparkOperator
        from fake_training_operator import FakeTrainingOperator

        controllers += [FakeTrainingOperator(), FakeDaskOperator(), FakeSparkOperator()]
    thread = EmulatorThread(controllers).start()
    if "--kinds" in sys.argv[1:]:
        from fake_dask_operator import DASKCLUSTERS, DASKJOBS, SERVICES
        from fake_spark_operator import SPARKAPPLICATIONS
        from fake_training_operator import TFJOBS

        def declare() -> None:
            emulator = thread.emulator
            assert emulator is not None
            for key, kind in (
                (TFJOBS, "TFJob"),
                (DASKJOBS, "DaskJob"),
                (DASKCLUSTERS, "DaskCluster"),
                (SPARKAPPLICATIONS, "SparkApplication"),
            ):
                emulator.declare(key, kind)
            emulator.declare(SERVICES, "Service", status_subresource=False)

        thread.call(declare)
    kubeconfig = write_kubeconfig(thread.url, Path(tempfile.mkdtemp(prefix="kube-serve-")) / "kubeconfig")
    print(json.dumps({"url": thread.url, "kubeconfig": str(kubeconfig)}), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == "stats":
            emulator = thread.emulator
            assert emulator is not None
            counts = thread.call(emulator.count_by_user_agent)
            print(json.dumps({"by_user_agent": dict(counts), "total": sum(counts.values())}), flush=True)
        elif command == "quit":
            break
    thread.stop()


if __name__ == "__main__":
    main()
