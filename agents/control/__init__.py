"""Control agents (``gymgen.agents.control``): TD3, SAC and the plasticity methods ReDo, Reset and NE."""
