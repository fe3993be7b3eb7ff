"""Shipped WorldSim checkpoints (safetensors; loaded without executing code)."""
