"""Trainers: SFT, reward models, offline RL (A-LoL family, DPO, PRO) on one plain-PyTorch loop, and
online RL (PPO with fine-grained or legacy-step semantics, GRPO, RLOO) on the rollout engine."""
