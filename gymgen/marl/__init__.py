"""Multi-agent environments (SMAC-like battles, MPE, MaMuJoCo) for the MAST and Kaleidoscope papers."""
