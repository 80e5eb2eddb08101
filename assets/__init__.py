"""Dagster assets: one module per stage; each asset body is a short call into rlhf_core.stages."""

import warnings

import dagster as dg

# data versions, backfill policies and multi-dimension partition mappings are beta in dagster
# 1.13; the notice, repeated per asset, adds nothing for our users.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
