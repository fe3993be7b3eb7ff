"""Multi-agent tasks (PettingZoo parallel envs): SMAC-like battles, MPE tasks, MaMuJoCo."""
