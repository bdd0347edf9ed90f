"""Follow one pod's log into a callback, resuming a cut stream without losing or repeating lines.

The one log follower of the provider: the job lifecycle (:mod:`airflow_mlplatform.runners.kube_job`,
every kind, sync and deferrable) reads pod logs through :func:`stream_pod_log_lines`; the
trigger's live view of a deferred job's log uses :class:`SeenLines` too.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

from airflow_mlplatform.exceptions import KubernetesError, KubernetesNotFoundError, KubernetesTimeoutError


def split_timestamp(line: str) -> tuple[str, str]:
    """``("2026-...Z", "text")`` from a log line requested with ``timestamps=true``."""
    head, sep, rest = line.partition(" ")
    if sep and head[:4].isdigit() and head.endswith("Z"):
        return head, rest
    return "", line


class SeenLines:
    """Which lines of a log were already handed on, so a re-read can skip them.

    After :meth:`resume` the server sends the output again from the start; lines up to the last
    one seen (by timestamp, and count within the same timestamp) are skipped.
    """

    def __init__(self) -> None:
        self.last_ts = ""
        self.same_ts = 0
        self._skip: tuple[str, int] | None = None

    def resume(self) -> None:
        """The stream was cut: skip what was already seen when it starts again."""
        self._skip = (self.last_ts, self.same_ts)

    def accept(self, raw: str) -> str | None:
        """The line's text (timestamp and newline removed), or None if it was seen already."""
        ts, text = split_timestamp(raw.rstrip("\n"))
        if self._skip is not None and ts:
            skip_ts, skip_n = self._skip
            if ts < skip_ts:
                return None
            if ts == skip_ts and skip_n > 0:
                self._skip = (skip_ts, skip_n - 1)
                return None
            self._skip = None
        if ts:
            self.same_ts = self.same_ts + 1 if ts == self.last_ts else 1
            self.last_ts = ts
        return text


def stream_pod_log_lines(
    hook: Any,
    pod: str,
    namespace: str,
    *,
    container: str,
    on_line: Callable[[str], Any],
    log: Any = None,
    reconnects: int = 10,
    follow: bool = True,
    deadline: float | None = None,
) -> bool:
    """Stream a started pod's container log into ``on_line`` until the container ends.

    After a cut the pod is looked at once: while it runs, the log is followed again; once it is
    done, the log is read once more without following. Either way the lines already seen are
    skipped. When the last attempt is cut too, a KubernetesError says so (the output would be
    incomplete): a task must not succeed on half a log.

    :param hook: an ``MLPlatformKubernetesHook``.
    :param pod: the pod's name.
    :param namespace: its namespace.
    :param container: the container whose log is read.
    :param on_line: called with each line (without timestamp and newline).
    :param log: a logger for the reconnect warnings.
    :param reconnects: cuts tolerated.
    :param follow: follow the log (False: read what is there once, e.g. after the pod ended).
    :param deadline: UNIX time when following stops (the stream is shut down then).
    :return: False if the pod is gone (deleted, or never created), else True.
    :raises KubernetesError: the stream was cut ``reconnects + 1`` times.
    :raises KubernetesTimeoutError: the deadline passed while the log was followed.
    """
    import threading

    from urllib3.exceptions import HTTPError

    from airflow_mlplatform.hooks.kubernetes import PODS
    from airflow_mlplatform.specs.kinds import POD

    seen = SeenLines()
    responses: list[Any] = []
    passed = threading.Event()

    def shut_down() -> None:  # the deadline: end the stream this thread is blocked on
        passed.set()
        for resp in list(responses):
            with contextlib.suppress(Exception):
                resp.shutdown()

    timer = threading.Timer(max(0.0, deadline - time.time()), shut_down) if deadline and follow else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        for attempt in range(reconnects + 1):
            try:
                for raw in hook.stream_pod_log(
                    pod, namespace, container=container, follow=follow, on_response=responses.append
                ):
                    text = seen.accept(raw.decode("utf-8", "replace"))
                    if text is not None:
                        on_line(text)
                    if passed.is_set():
                        break
                if passed.is_set():
                    raise KubernetesTimeoutError(
                        f"the deadline passed while the log of pod {pod!r} was followed"
                    )
                return True
            except (HTTPError, OSError) as e:
                if passed.is_set():
                    raise KubernetesTimeoutError(
                        f"the deadline passed while the log of pod {pod!r} was followed"
                    ) from e
                if attempt == reconnects:
                    raise KubernetesError(
                        f"the log of pod {pod!r} in namespace {namespace!r} was cut {attempt + 1} times "
                        f"(last: {e}); its output is incomplete, so the job's values cannot be trusted. "
                        "Check the connection to the API server and the node's kubelet."
                    ) from e
                seen.resume()
                if follow and POD.is_done(hook.get_object(PODS, namespace, pod)):
                    follow = False  # the container ended: read the rest once, no more following
                if log is not None:
                    log.warning(
                        "The log stream of %s was cut (%s); %s",
                        pod,
                        e,
                        "reconnecting" if follow else "reading the rest of the log",
                    )
                time.sleep(min(0.2 * 2.0**attempt, 5.0))
    except KubernetesNotFoundError:
        return False
    finally:
        if timer is not None:
            timer.cancel()
    return True
