"""Run a command inside a fresh network namespace that has only loopback (and a fresh PID namespace).

Every test that starts Ray (or any server) goes through :func:`run_in_netns`: outside one, Ray binds the
machine's external interface and probes a public address to find it; inside, the only interface is
``lo`` (127.0.0.1), so no traffic can leave the machine. The PID namespace makes ``ray stop`` see only the
processes of this test and kills every process of the namespace when its first process exits. Needs
``unshare`` and ``ip`` and the right to create namespaces (root, as in CI); otherwise the test is skipped
with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any

import pytest

UNSHARE = ["unshare", "--net", "--pid", "--fork", "--mount-proc"]


def netns_unavailable() -> str | None:
    """Why a loopback-only namespace cannot be made here (None when it can)."""
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    probe = subprocess.run([*UNSHARE, "sh", "-c", "ip link set lo up"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        return f"`unshare --net --pid` was refused ({probe.stderr.strip() or probe.returncode}); run as root"
    return None


def run_in_netns(argv: list[str], timeout: float, env: dict[str, str] | None = None, **kw: Any) -> subprocess.CompletedProcess:
    """``argv`` run inside a fresh loopback-only network namespace; skips the test when none can be made."""
    why = netns_unavailable()
    if why is not None:
        pytest.skip(f"Ray tests run only inside a fresh network namespace with loopback only, and {why}")
    cmd = [*UNSHARE, "sh", "-c", 'ip link set lo up && exec "$@"', "sh", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})}, **kw)
