"""A fake Spark operator (kubeflow/spark-operator) for the Kubernetes test bed (a controller of
tests/kube/emulator.py).

On a new SparkApplication it checks the spec as the real operator's submission would (a
``local://`` main file that exists here, a main class for Java/Scala), sets
``status.applicationState`` SUBMITTED and creates the driver pod ``{name}-driver`` (container
``spark-kubernetes-driver``, the real operator's labels, the driver's env) whose command is a
real ``spark-submit --master local[2]`` of the application, with the ``sparkConf`` and the
arguments, driver and UI on 127.0.0.1. The fake kubelet runs it as a local process and serves
its log. The state follows the driver pod: RUNNING, then COMPLETED, or FAILED with the real
operator's ``errorMessage``; a submission it cannot make is SUBMISSION_FAILED. Deleting the
SparkApplication deletes its driver pod (the kubelet kills the JVM's process group).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from kube.emulator import now_iso

SPARKAPPLICATIONS = "sparkoperator.k8s.io/v1beta2/sparkapplications"
PODS = "v1/pods"
APP_LABEL = "sparkoperator.k8s.io/app-name"
ROLE_LABEL = "spark-role"
DRIVER_CONTAINER = "spark-kubernetes-driver"


def spark_submit() -> str:
    """``spark-submit`` of the pyspark this interpreter has (the Spark of the driver image)."""
    import pyspark

    return str(Path(pyspark.__file__).parent / "bin" / "spark-submit")


class FakeSparkOperator:
    resources = (SPARKAPPLICATIONS, PODS)

    def __init__(self, *, master: str = "local[2]") -> None:
        self.master = master
        self.submitted: list[str] = []

    async def on_event(self, emulator: Any, event_type: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if obj.get("kind") == "SparkApplication":
            if event_type == "ADDED":
                await self._submit(emulator, obj)
            elif event_type == "DELETED":
                await emulator.remove_object(PODS, meta["namespace"], f"{meta['name']}-driver")
        elif obj.get("kind") == "Pod" and event_type == "MODIFIED":
            labels = meta.get("labels") or {}
            if labels.get(ROLE_LABEL) == "driver" and labels.get(APP_LABEL):
                await self._driver_changed(emulator, meta["namespace"], labels[APP_LABEL], obj)

    def _argv(self, spec: dict[str, Any], name: str) -> list[str]:
        main = spec["mainApplicationFile"]
        if not main.startswith("local://"):
            raise ValueError(f"main application file {main} is not a local:// file of the driver image")
        path = main[len("local://") :]
        if not os.path.isfile(path):
            raise ValueError(f"failed to run spark-submit: {path} does not exist")
        if spec["type"] in ("Java", "Scala") and not spec.get("mainClass"):
            raise ValueError("mainClass is required for Java and Scala applications")
        conf = {
            **(spec.get("sparkConf") or {}),
            "spark.ui.enabled": "false",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.app.name": name,
        }
        argv = [spark_submit(), "--master", self.master, "--deploy-mode", "client"]
        for key, value in sorted(conf.items()):
            argv += ["--conf", f"{key}={value}"]
        if spec.get("mainClass"):
            argv += ["--class", spec["mainClass"]]
        return [*argv, path, *(spec.get("arguments") or [])]

    async def _submit(self, emulator: Any, app: dict[str, Any]) -> None:
        ns, name, spec = app["metadata"]["namespace"], app["metadata"]["name"], app["spec"]
        self.submitted.append(name)
        try:
            argv = self._argv(spec, name)
        except ValueError as e:
            await emulator.set_status(
                SPARKAPPLICATIONS,
                ns,
                name,
                {
                    "applicationState": {"state": "SUBMISSION_FAILED", "errorMessage": str(e)},
                    "submissionAttempts": 1,
                },
            )
            return
        driver = spec["driver"]
        env = [
            *(driver.get("env") or []),
            {"name": "PYSPARK_PYTHON", "value": sys.executable},
            {"name": "SPARK_LOCAL_IP", "value": "127.0.0.1"},
        ]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": f"{name}-driver",
                "namespace": ns,
                "labels": {
                    **(driver.get("labels") or {}),
                    APP_LABEL: name,
                    ROLE_LABEL: "driver",
                    "sparkoperator.k8s.io/launched-by-spark-operator": "true",
                },
            },
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": driver.get("serviceAccount", "default"),
                "containers": [
                    {"name": DRIVER_CONTAINER, "image": spec["image"], "command": argv, "env": env}
                ],
            },
        }
        await emulator.set_status(
            SPARKAPPLICATIONS,
            ns,
            name,
            {
                "applicationState": {"state": "SUBMITTED"},
                "driverInfo": {"podName": f"{name}-driver"},
                "submissionAttempts": 1,
                "lastSubmissionAttemptTime": now_iso(),
            },
        )
        await emulator.add_object(PODS, ns, pod)

    async def _driver_changed(self, emulator: Any, ns: str, name: str, pod: dict[str, Any]) -> None:
        app = emulator.get_object(SPARKAPPLICATIONS, ns, name)
        if app is None:
            return
        state = ((app.get("status") or {}).get("applicationState") or {}).get("state")
        phase = (pod.get("status") or {}).get("phase")
        if phase == "Running" and state == "SUBMITTED":
            await emulator.set_status(SPARKAPPLICATIONS, ns, name, {"applicationState": {"state": "RUNNING"}})
        elif phase in ("Succeeded", "Failed") and state in ("SUBMITTED", "RUNNING"):
            if phase == "Succeeded":
                status: dict[str, Any] = {"applicationState": {"state": "COMPLETED"}}
            else:
                code = next(
                    (
                        (c.get("state") or {}).get("terminated", {}).get("exitCode")
                        for c in (pod.get("status") or {}).get("containerStatuses") or []
                    ),
                    None,
                )
                status = {
                    "applicationState": {
                        "state": "FAILED",
                        "errorMessage": f"driver container failed with ExitCode: {code}, Reason: Error",
                    }
                }
            status["terminationTime"] = now_iso()
            await emulator.set_status(SPARKAPPLICATIONS, ns, name, status)
