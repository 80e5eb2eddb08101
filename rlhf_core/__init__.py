"""rlhf_core: the framework-free core of rlhf-pipeline."""
