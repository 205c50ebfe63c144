"""What both worker processes (`vector-operator worker` in a Job, `vector-operator sync` in a
Deployment) do around their work: run offline, log to stderr, and run the work on a thread of its
own while the main thread waits for it or for SIGTERM, so that SIGTERM is answered even while the
work is inside a long model call (which cannot be interrupted)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from types import FrameType

LOG_LEVEL_ENV = "VO_LOG_LEVEL"
WAIT_STEP_S = 0.2
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def prepare_process(logger: logging.Logger, environ: Mapping[str, str]) -> None:
    """Offline Hugging Face libraries (read when they are imported, so before that), and
    ``logger`` to stderr at ``$VO_LOG_LEVEL`` (INFO)."""
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(environ.get(LOG_LEVEL_ENV, "INFO").upper())
    logger.propagate = False


def run_until_sigterm(
    work: Callable[[], None], name: str, on_sigterm: Callable[[], None] | None = None
) -> tuple[threading.Thread, bool]:
    """Runs ``work`` on a daemon thread and waits until it returns or SIGTERM arrives (then
    ``on_sigterm`` runs in the signal handler). Returns the thread (still alive after a SIGTERM the
    work has not answered yet) and whether SIGTERM came. The handler is installed only from the
    main thread (tests call this from others), and the previous one is put back."""
    terminated = threading.Event()

    def handle(_signal: int, _frame: FrameType | None) -> None:
        terminated.set()
        if on_sigterm is not None:
            on_sigterm()

    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, handle) if in_main_thread else None
    thread = threading.Thread(target=work, name=name, daemon=True)
    try:
        thread.start()
        while thread.is_alive() and not terminated.is_set():
            thread.join(WAIT_STEP_S)
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return thread, terminated.is_set()
