"""How an operator run on the host (the demo, the tests, the benchmarks) has its embedding Jobs run
as host processes of this interpreter on the local node.

The node agent runs a pod from its image when the image is in buildah's local storage, and the
default worker image is exactly what `make image` builds. An operator started from the source tree
(with the worker command of this interpreter, which exists only on the host) therefore names a
worker image that is never built: the node agent finds no such image and runs the Job's command as
a host process, as it always did. The operator started from the image itself (the chart's pod) keeps
its default, and its Jobs run from the image."""

from __future__ import annotations

import sys

HOST_WORKER_IMAGE = "localhost/vector-operator:host-process"
"""A worker image name never built, so the node agent runs the Jobs as host processes."""

HOST_WORKER_COMMAND = f"{sys.executable} -m vector_operator.cli worker"
"""This interpreter's worker: the venv the operator runs from."""


def host_worker_args() -> list[str]:
    """`vector-operator run` options that make its Jobs host processes of this interpreter."""
    return ["--worker-image", HOST_WORKER_IMAGE, "--worker-command", HOST_WORKER_COMMAND]
