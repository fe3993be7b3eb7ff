"""GFlowNet reference agents (``gymgen.agents.gfn``): TB, DB, SubTB, FM baselines and the seed papers'
methods, on shared samplers, networks, losses, replay buffers and exact evaluation."""
