"""Run the test bed (emulator + fake kubelet + fake Spark operator) as its own process, for benchmarks.

Prints one JSON line ``{"url": ..., "kubeconfig": ...}`` when ready, then answers commands on
stdin, one per line: ``stats`` (prints request counts by User-Agent, and the total) and ``quit``.

    python tests/kube/serve.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fake_spark_operator import SPARKAPPLICATIONS, FakeSparkOperator
from kube.emulator import EmulatorThread
from kube.fixtures import write_kubeconfig
from kube.kubelet import FakeKubelet


def main() -> None:
    kubelet = FakeKubelet()
    thread = EmulatorThread([kubelet]).start()
    assert thread.emulator is not None
    thread.call(thread.emulator.declare, SPARKAPPLICATIONS, "SparkApplication")
    thread.call(thread.emulator.add_controller, FakeSparkOperator())
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
