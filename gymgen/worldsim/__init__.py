"""WorldSim: a small action-free video model turned into an action-controllable world simulator (DWS).

Modules: ``data`` (record real ale-py episodes), ``model`` (base video model, FiLM action module,
reward/termination heads, motion-reinforced loss), ``checkpoint`` (safe safetensors I/O),
``train`` (reproduce the shipped checkpoint), ``metrics`` (fidelity), ``env`` (the Gymnasium env).
"""
