"""gymgen.agents: reference agents for every method in the seed papers, one module per method."""
