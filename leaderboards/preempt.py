"""The serial backend's timeout: run a call in a helper thread and stop waiting for it after ``timeout_s``.

An agent can catch any exception a timeout raises *inside* it (``except BaseException: pass`` in a loop),
so no in-process exception reliably stops it. The runner therefore never waits on the agent: the run
executes in a daemon thread, the runner waits at most ``timeout_s``, records the timeout and goes on. It
then asks the thread to stop (an asynchronous ``RunTimeout`` raised in it, repeated for a moment); an
agent that swallows even that keeps running in the background until the runner exits, and a warning says
so. The process backend (the default) kills a timed-out worker instead.
"""

from __future__ import annotations

import ctypes
import sys
import threading
import time
from typing import Any, Callable

STOP_TRIES_S = 2.0


class RunTimeout(BaseException):
    """Raised inside a run's thread to stop it once it has exceeded its timeout."""


def _raise_in(thread: threading.Thread) -> None:
    if thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread.ident), ctypes.py_object(RunTimeout))


def call_with_timeout(fn: Callable[[], Any], timeout_s: float, name: str = "run") -> tuple[str, Any]:
    """``("ok", fn())``, ``("error", exception)`` when ``fn`` raised (``BaseException`` included: a
    ``KeyboardInterrupt`` an agent raises in its own thread is not the user's Ctrl-C, which interrupts
    this thread's wait instead), or ``("timeout", None)`` when ``fn`` did not return within ``timeout_s``.

    ``timeout_s == 0`` means no timeout: ``fn`` runs in this thread and its exceptions propagate.
    """
    if timeout_s == 0:
        return "ok", fn()
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = fn()
        except RunTimeout:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"gymgen-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        deadline = time.monotonic() + STOP_TRIES_S
        while thread.is_alive() and time.monotonic() < deadline:
            _raise_in(thread)
            thread.join(0.05)
        if thread.is_alive():
            print(f"gymgen leaderboard: {name} exceeded timeout_s={timeout_s:g} and ignored the request to stop; it "
                  "keeps running in a background thread until this runner exits (use --backend process, which "
                  "kills timed-out workers)", file=sys.stderr)
        return "timeout", None
    if "error" in box:
        return "error", box["error"]
    return "ok", box.get("result")
