"""The Dagster code location: definitions for every task config in configs/tasks/."""
