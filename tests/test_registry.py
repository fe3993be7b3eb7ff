"""The one env table: registration on import, lookups, errors that name the bad value."""

import json
import subprocess
import sys

import gymnasium
import pytest

import gymgen
from gymgen.registry import ENVS, FAMILIES, UnknownEnvError


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_import_gymgen_does_not_import_torch():
    out = _run("import sys, gymgen; print('torch' in sys.modules)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_module_prefix_make_imports_gymgen_for_you():
    out = _run("import gymnasium; e = gymnasium.make('gymgen:gymgen/HyperGrid-v0'); print(e.reset(seed=0)[0]['state'].tolist())")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[0, 0]"


def test_bare_gymnasium_make_without_import_is_a_namespace_error():
    # Gymnasium 1.x has no plugin loading: without `import gymgen` (or the "gymgen:" prefix) the id is unknown.
    out = _run("import gymnasium\ntry:\n    gymnasium.make('gymgen/HyperGrid-v0')\nexcept Exception as e:\n    print(type(e).__name__)")
    assert out.stdout.strip() == "NamespaceNotFound"


def test_every_entry_registered_with_its_api():
    import pettingzoo

    for e in ENVS:
        if e.api == "gymnasium":
            assert e.id in gymnasium.registry
        else:
            assert e.id in pettingzoo.parallel_registry


def test_list_envs_filters_and_serialises():
    dag = gymgen.list_envs("dag")
    assert dag and all(e.family == "dag" for e in dag)
    assert len(gymgen.list_envs()) == len(ENVS)
    json.dumps([e.as_dict() for e in gymgen.list_envs()])
    with pytest.raises(ValueError, match="unknown family 'nope'"):
        gymgen.list_envs("nope")
    assert set(e.family for e in ENVS) <= set(FAMILIES)


def test_unknown_id_lists_close_matches():
    with pytest.raises(UnknownEnvError, match="Did you mean: gymgen/HyperGrid-v0"):
        gymgen.make("gymgen/HyperGrd-v0")


def test_bad_kwarg_lists_valid_keys():
    with pytest.raises(TypeError, match=r"'heigth' \(did you mean 'height'\?\); valid keys: .*'ndim'"):
        gymgen.make("gymgen/HyperGrid-v0", heigth=4)


def test_make_make_vec_make_batched_agree_on_spaces():
    env = gymgen.make("gymgen/HyperGrid-v0", ndim=3, height=5)
    vec = gymgen.make_vec("gymgen/HyperGrid-v0", num_envs=4, ndim=3, height=5)
    batched = gymgen.make_batched("gymgen/HyperGrid-v0", batch_size=4, ndim=3, height=5)
    assert env.observation_space == vec.single_observation_space == batched.single_observation_space
    assert batched.batch_size == (4,)


def test_parallel_env_rejects_single_agent_id():
    with pytest.raises(TypeError, match="single-agent Gymnasium env"):
        gymgen.parallel_env("gymgen/HyperGrid-v0")


def test_readme_env_table_is_current():
    import pathlib
    import runpy

    mod = runpy.run_path(str(pathlib.Path(__file__).resolve().parents[1] / "scripts" / "update_readme.py"))
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert mod["render"](readme) == readme, "README env table is stale: run python scripts/update_readme.py"


# ---- optional extras: which one an id needs, and a clear error when it is missing -----------------------------
def test_every_extra_of_the_table_is_a_pyproject_extra_with_a_probe_module():
    import tomllib
    from pathlib import Path

    from gymgen.registry import EXTRA_MODULES

    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    used = {e.extra for e in gymgen.list_envs() if e.extra}
    assert used <= set(extras), sorted(used - set(extras))
    assert used <= set(EXTRA_MODULES) <= set(extras), (sorted(used - set(EXTRA_MODULES)), sorted(set(EXTRA_MODULES) - set(extras)))


def test_missing_extra_names_the_extra_only_when_its_probe_module_is_absent(monkeypatch):
    from gymgen import registry
    from gymgen.testing import skip_if_extra_missing

    env_id = next(e.id for e in gymgen.list_envs() if e.extra)
    extra = gymgen.get_entry(env_id).extra
    assert gymgen.get_entry("gymgen/HyperGrid-v0").extra is None and registry.missing_extra("gymgen/HyperGrid-v0") is None
    monkeypatch.setitem(registry.EXTRA_MODULES, extra, (*registry.EXTRA_MODULES[extra], "gymgen_no_such_probe_module"))
    assert registry.missing_extra(env_id) == extra
    with pytest.raises(pytest.skip.Exception, match=rf"\[{extra}\].*pip install"):
        skip_if_extra_missing(env_id)
