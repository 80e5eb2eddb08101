"""Command-line entry points (`rlhf run TASK`)."""
