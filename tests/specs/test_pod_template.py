"""The one pod template: every kind's pods get the same environment rule and security defaults."""

from __future__ import annotations

import json

import pytest

from airflow_mlplatform.compute import ComputeProfile
from airflow_mlplatform.specs import daskjob
from airflow_mlplatform.specs import pod as podspec
from airflow_mlplatform.specs import tfjob as tfspec
from airflow_mlplatform.specs.pod_template import merge_env, pod_fields


def test_merge_env_task_over_profile_provider_over_both_each_name_once():
    env = merge_env(
        {"A": "p", "B": "p", "MLPLATFORM_X": "p"}, {"A": "t", "MLPLATFORM_X": "t"}, {"MLPLATFORM_X": "mlp"}
    )
    assert env == [
        {"name": "A", "value": "t"},
        {"name": "B", "value": "p"},
        {"name": "MLPLATFORM_X", "value": "mlp"},
    ]


@pytest.mark.parametrize("case", ["pod", "tfjob", "daskjob", "daskcluster"])
def test_env_rule_is_the_same_for_every_kind(case):
    """Task env over profile env, the provider's own MLPLATFORM_* over both, each name once."""
    profile = ComputeProfile(
        name="p",
        backend="kubernetes",
        image="img",
        env={"SHARED": "profile", "ONLY_PROFILE": "1", "MLPLATFORM_PARAMETERS": "profile"},
    )
    fields = pod_fields(profile)
    task = {"SHARED": "task", "MLPLATFORM_PARAMETERS": "task"}
    provider = {"MLPLATFORM_PARAMETERS": json.dumps({"a": 1})}
    containers = {
        "pod": podspec.build_pod(profile, name="p", command=["x"], env={**task, **provider})["spec"][
            "containers"
        ],
        "tfjob": [
            rs["template"]["spec"]["containers"][0]
            for rs in tfspec.build_tfjob(
                name="t",
                namespace="d",
                image="img",
                command=["x"],
                replicas={"Worker": tfspec.Replica("Worker", 1, None, fields)},
                env=task,
                provider_env=provider,
            )["spec"]["tfReplicaSpecs"].values()
        ],
    }
    dj = daskjob.build_daskjob(
        name="d",
        namespace="d",
        image="img",
        command=["x"],
        n_workers=1,
        env=task,
        provider_env=provider,
        runner_pod=fields,
        scheduler_pod=fields,
        worker_pod=fields,
    )["spec"]
    dc = daskjob.build_daskcluster(
        name="c",
        namespace="d",
        image="img",
        n_workers=1,
        env=task,
        provider_env=provider,
        worker_pod=fields,
        scheduler_pod=fields,
    )["spec"]
    containers["daskjob"] = [
        dj["job"]["spec"]["containers"][0],
        dj["cluster"]["spec"]["scheduler"]["spec"]["containers"][0],
        dj["cluster"]["spec"]["worker"]["spec"]["containers"][0],
    ]
    containers["daskcluster"] = [
        dc["scheduler"]["spec"]["containers"][0],
        dc["worker"]["spec"]["containers"][0],
    ]
    found = containers[case]
    assert found
    for container in found:
        env = container["env"]
        names = [e["name"] for e in env]
        assert len(names) == len(set(names)), (case, names)
        values = {e["name"]: e["value"] for e in env}
        assert values["SHARED"] == "task", case
        assert values["ONLY_PROFILE"] == "1", case
        assert values["MLPLATFORM_PARAMETERS"] == json.dumps({"a": 1}), case
        assert container["securityContext"]["allowPrivilegeEscalation"] is False, case
