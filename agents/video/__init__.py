"""VPDD reference agents: a VQ video tokenizer, a mask-and-replace discrete diffusion model over video
tokens pretrained on action-free video, few-demo finetuning into an action-token policy, and a plain
behaviour-cloning baseline. See ``gymgen.agents.video.vpdd`` and ``gymgen.agents.video.bc``."""
