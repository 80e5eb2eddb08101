"""Trainers: SFT, reward models, offline RL (A-LoL family, DPO) on one plain-PyTorch loop."""
