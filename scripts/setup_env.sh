#!/usr/bin/env bash
# Create ./.venv with the CPU build of torch and gymgen installed editable with every extra that
# installs from PyPI on a plain CPU machine. Idempotent: reinstalls only when pyproject.toml changes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=${GYMGEN_VENV:-.venv}
EXTRAS=${GYMGEN_EXTRAS:-dev,mol,marl,worldsim,video,plots,ray,sb3,control,dmc}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp="$VENV/.gymgen-installed"
want="$(sha256sum pyproject.toml setup.py | sha256sum | cut -c1-16)-$EXTRAS"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # The CPU build first: a bare `torch` requirement would pull a multi-GB CUDA build.
  "$VENV/bin/python" -m pip install -q "torch==2.13.0"
  "$VENV/bin/python" -m pip install -q -e ".[$EXTRAS]"
  # torchgfn is only the speed baseline in tests/benchmarks. Its metadata pins numpy<2 (it runs fine
  # on numpy 2), so install its import-time dependencies first and torchgfn itself without deps.
  { "$VENV/bin/python" -m pip install -q torch_geometric linear-attention-transformer einops dill \
      && "$VENV/bin/python" -m pip install -q --no-deps "torchgfn==2.4.1"; } \
    || echo "note: torchgfn not installed; benchmark comparisons against it will be skipped"
  # Headless MuJoCo rendering (control envs' rgb_array): Debian's OSMesa, best effort when we are root.
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && ! ldconfig -p 2>/dev/null | grep -q libOSMesa; then
    { apt-get install -y -q libosmesa6 >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q libosmesa6 >/dev/null 2>&1; }; } \
      || echo "note: libosmesa6 not installed; MuJoCo render tests will be skipped"
  fi
  echo "$want" > "$stamp"
fi
# A venv made before the mujoco==3.3.0 pin may hold mujoco 4's split packages, whose plugin files
# sit inside mujoco/ and break `import mujoco` on 3.3.0: remove them and restore the pinned files.
if "$VENV/bin/python" -m pip show -q mujoco-core >/dev/null 2>&1; then
  "$VENV/bin/python" -m pip uninstall -q -y mujoco-core mujoco-studio
  "$VENV/bin/python" -m pip install -q --force-reinstall --no-deps "mujoco==3.3.0"
fi
