"""Agents for the WorldSim family: actor-critic trained in the DWS world simulator (prioritized imagination)."""
