"""Ray scenarios the Ray tests run inside a loopback-only network namespace (see ``netns.py``).

``python ray_scenarios.py local SUITE DB``: the ray backend with a local Ray it starts itself.
``python ray_scenarios.py cluster SUITE DB TMP``: a real cluster (``ray get-auth-token --generate``, then
``ray start --head``, so Ray 2.60 token authentication is on), the suite run through the CLI with
``--backend ray --address auto``, then ``ray stop``. Prints one JSON line with what happened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def local(suite: str, db: str) -> dict:
    sys.path.insert(0, str(HERE))
    from gymgen.leaderboards.harness import run_suite
    from gymgen.leaderboards.store import Store
    from gymgen.leaderboards.suite import load_suite

    return {"counts": run_suite(load_suite(suite), Store(db), backend="ray", workers=2, progress=False)}


def cluster(suite: str, db: str, tmp: str) -> dict:
    bindir = Path(sys.executable).parent
    env = {**os.environ, "HOME": str(Path(tmp) / "home"), "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_AUTH_MODE", None)
    Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
    temp_dir = Path("/tmp") / f"ggr-{os.getpid()}"  # unix socket paths must stay short
    out: dict = {}
    gen = subprocess.run([str(bindir / "ray"), "get-auth-token", "--generate"], env=env, capture_output=True, text=True)
    out["token_file"] = (Path(env["HOME"]) / ".ray" / "auth_token").exists()
    head = subprocess.run([str(bindir / "ray"), "start", "--head", "--num-cpus=2", "--include-dashboard=false",
                           "--disable-usage-stats", f"--temp-dir={temp_dir}"], env=env, capture_output=True, text=True)
    out["head_rc"] = head.returncode
    out["token_auth"] = "Token authentication is enabled" in head.stdout + head.stderr
    try:
        run = subprocess.run([str(bindir / "gymgen"), "leaderboard", "run", suite, "--backend", "ray", "--address", "auto",
                              "--workers", "2", "--db", db, "--no-report"], env=env, capture_output=True, text=True, timeout=600)
        out["run_rc"], out["run_out"] = run.returncode, (run.stdout + run.stderr)[-3000:]
    finally:
        subprocess.run([str(bindir / "ray"), "stop", "--force"], env=env, capture_output=True, text=True)
    out["gen_rc"] = gen.returncode
    return out


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    print(json.dumps(local(*args) if mode == "local" else cluster(*args)))
