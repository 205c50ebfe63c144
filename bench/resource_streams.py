"""Watches a benchmark follows: each stream in a thread of its own, resumed from the last
resourceVersion after a dropped connection and listed again after 410 Gone, every event recorded
(with time.time(): sub-second, where the API server's timestamps have whole seconds) under one
condition the benchmark waits on."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes import watch
from kubernetes.client.exceptions import ApiException

Json = dict[str, Any]
Record = Callable[[str, Json, float], None]
"""Called with the event's type, the object as served, and when it was seen."""


class ResourceStreams:
    def __init__(self) -> None:
        self.changed = threading.Condition()
        self._stopped = threading.Event()
        self._watches: list[watch.Watch] = []
        self._threads: list[threading.Thread] = []

    def follow(self, list_call: Callable[..., Any], args: tuple[Any, ...], record: Record) -> None:
        """Adds a stream (``list_call(*args)`` watched), followed from ``start``."""
        self._threads.append(
            threading.Thread(target=self._follow, args=(list_call, args, record), daemon=True)
        )

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopped.set()
        for each in self._watches:
            each.stop()  # type: ignore[no-untyped-call]

    def wait(self, done: Callable[[], Any], timeout: float) -> bool:
        with self.changed:
            return bool(self.changed.wait_for(done, timeout))

    def _follow(self, list_call: Callable[..., Any], args: tuple[Any, ...], record: Record) -> None:
        resource_version = None
        while not self._stopped.is_set():
            stream = watch.Watch()  # type: ignore[no-untyped-call]
            self._watches.append(stream)
            try:
                for event in stream.stream(  # type: ignore[no-untyped-call]
                    list_call, *args, resource_version=resource_version, timeout_seconds=300
                ):
                    body = event["raw_object"]
                    if event["type"] == "ERROR":
                        resource_version = None if body.get("code") == 410 else resource_version
                        break
                    resource_version = body["metadata"]["resourceVersion"]
                    with self.changed:
                        record(event["type"], body, time.time())
                        self.changed.notify_all()
            except ApiException as error:
                if error.status == 410:  # expired: list again (what was recorded is kept)
                    resource_version = None
                time.sleep(0.2)
            except Exception:  # a dropped connection: resume from the last version seen
                time.sleep(0.2)
