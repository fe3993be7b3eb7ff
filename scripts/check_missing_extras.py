"""Every optional extra that is missing fails with an ImportError naming ``gymgen[<extra>]``.

Run it where the extras are not installed (``scripts/check_plain_install.sh`` does, in a fresh venv),
or with ``--block`` to hide the extras' modules from an environment that has them (the default test
suite does that, ``tests/ecosystem/test_plain_install.py``). Checks every registered id that names an
extra, the leaderboard's Ray backend (``[ray]``) and the report's plots (``[plots]``). Exit code 1 and
a list of the failures otherwise.
"""

from __future__ import annotations

import sys
from typing import Any

def block_extras() -> None:
    """Hide every extra's modules from this process, as if they were not installed: ``import X`` raises
    ``ModuleNotFoundError`` and ``importlib.util.find_spec(X)`` is None (must run before they are imported)."""
    from gymgen.registry import EXTRA_MODULES  # gymgen's import loads no extra (checked just below)

    names = {m for mods in EXTRA_MODULES.values() for m in mods}
    loaded = sorted(n for n in sys.modules if n.split(".")[0] in names)
    if loaded:
        raise RuntimeError(f"cannot hide extras that are already imported: {loaded[:5]}")
    for name in names:
        sys.modules[name] = None  # type: ignore[assignment]


def _expect_import_error(what: str, extra: str, build: Any, failures: list[str]) -> None:
    try:
        build()
    except ImportError as exc:
        if f"gymgen[{extra}]" not in str(exc):
            failures.append(f"{what}: ImportError does not name gymgen[{extra}]: {exc}")
        else:
            print(f"ok  {what}: {str(exc)[:110]}")
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        failures.append(f"{what}: {type(exc).__name__} instead of an ImportError naming gymgen[{extra}]: {exc}")
    else:
        failures.append(f"{what}: built without the [{extra}] extra")


def main() -> int:
    if "--block" in sys.argv[1:]:
        block_extras()
    import gymgen

    failures: list[str] = []
    for e in gymgen.list_envs():
        if e.extra is None:
            continue
        make = gymgen.parallel_env if e.api == "parallel" else gymgen.make
        _expect_import_error(e.id, e.extra, lambda: make(e.id), failures)
        if e.batched_entry_point:
            _expect_import_error(f"{e.id} (make_batched)", e.extra, lambda: gymgen.make_batched(e.id), failures)
    from gymgen.leaderboards.runner import ray_backend

    _expect_import_error("leaderboard --backend ray", "ray", lambda: next(ray_backend([], 1.0, 1)), failures)
    for f in failures:
        print("FAIL", f)
    print(f"{'FAILED' if failures else 'passed'}: missing extras checked ({len(failures)} failures)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
