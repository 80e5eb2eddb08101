"""Dagster assets: one module per stage; each asset body is a short call into rlhf_core.stages."""
