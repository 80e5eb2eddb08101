"""Scorers with one signature (TRL reward functions), a registry by name, weighted combination."""
