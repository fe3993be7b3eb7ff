"""SMAC-like micromanagement battles, simulated in batched torch (clean-room, not StarCraft II).

``SMACLite`` is the TorchRL env, ``SMACLiteParallelEnv`` the PettingZoo view, ``scripted`` holds
batched scripted policies (random, focus-fire, attack-nearest, attack-random, kiting, stand-still),
``dynamics`` the batch-last simulator tick.
"""
