"""Follow one pod's log into a callback, resuming a cut stream without losing or repeating lines."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from airflow_mlplatform.exceptions import KubernetesNotFoundError


def follow_pod_log(
    hook: Any,
    pod: str,
    namespace: str,
    *,
    container: str,
    on_line: Callable[[str], Any],
    timeout: float,
    log: Any = None,
    reconnects: int = 10,
) -> bool:
    """Wait for the pod to start, then stream its container's log until the container ends.

    After a cut the log is asked for again (with timestamps) and the lines already seen are
    skipped (by timestamp, and count within one timestamp).

    :param hook: an ``MLPlatformKubernetesHook``.
    :param pod: the pod's name.
    :param namespace: its namespace.
    :param container: the container whose log is read.
    :param on_line: called with each line (without timestamp and newline).
    :param timeout: seconds to wait for the pod to start.
    :param log: a logger for the reconnect warnings.
    :param reconnects: cuts tolerated.
    :return: False if the pod is gone (deleted, or never created), else True.
    """
    from urllib3.exceptions import HTTPError

    from airflow_mlplatform.hooks.kubernetes import PODS
    from airflow_mlplatform.runners.pod import split_timestamp

    try:
        hook.wait_for_object(
            PODS,
            namespace,
            pod,
            lambda p: (p.get("status") or {}).get("phase") not in (None, "Pending"),
            timeout=timeout,
        )
        last_ts, same_ts = "", 0
        skip: tuple[str, int] | None = None
        for attempt in range(reconnects + 1):
            try:
                for raw in hook.stream_pod_log(pod, namespace, container=container):
                    ts, text = split_timestamp(raw.decode(errors="replace").rstrip("\n"))
                    if skip is not None and ts:
                        if ts < skip[0]:
                            continue
                        if ts == skip[0] and skip[1] > 0:
                            skip = (skip[0], skip[1] - 1)
                            continue
                        skip = None
                    if ts:
                        same_ts = same_ts + 1 if ts == last_ts else 1
                        last_ts = ts
                    on_line(text)
                return True
            except (HTTPError, OSError) as e:
                if attempt == reconnects:
                    raise
                if log is not None:
                    log.warning("The log stream of %s was cut (%s); reconnecting", pod, e)
                skip = (last_ts, same_ts)
                time.sleep(min(0.2 * 2.0**attempt, 5.0))
    except KubernetesNotFoundError:
        return False
    return True
