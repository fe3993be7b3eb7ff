"""Continuous control for plasticity studies (NE): gymnasium MuJoCo v5 robots with non-stationary
schedules (reward shifts, friction/gravity/mass shifts, task cycles) as registered ids.

``gymgen.control.env.ControlEnv`` is the env (a ``gymnasium.Env``; dynamics are MuJoCo's);
``gymgen.control.schedule`` validates schedules without importing MuJoCo. Needs ``pip install "gymgen[control]"``.
"""
