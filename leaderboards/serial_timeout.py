"""The serial backend's timeout: run a call in a helper thread and stop waiting for it after ``timeout_s``.

An agent can catch any exception a timeout raises *inside* it (``except BaseException: pass`` in a loop),
so no in-process exception reliably stops it, and none can interrupt native code. The runner therefore
never waits on the agent: the run executes in a daemon thread, the runner waits at most ``timeout_s``,
records the timeout and goes on, and a warning says that the abandoned run keeps running in the
background until the runner exits. The process backend (the default) kills a timed-out worker instead.

No asynchronous exception is sent to the abandoned thread: in CPython one that cannot be delivered
(the thread is blocked in ``time.sleep`` or in C code) keeps the interpreter's eval-breaker flag set,
and every other thread then runs on the slow path for the rest of the process (measured: a hypothesis
test went from 0.6 s to over 60 s).
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable


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
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"gymgen-{name}", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        print(f"gymgen leaderboard: {name} exceeded timeout_s={timeout_s:g}; the serial backend cannot stop it, so "
              "it keeps running in a background thread until this runner exits (the process backend kills "
              "timed-out runs)", file=sys.stderr)
        return "timeout", None
    if "error" in box:
        return "error", box["error"]
    return "ok", box.get("result")
