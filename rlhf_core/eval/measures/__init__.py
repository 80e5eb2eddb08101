"""The registered evaluation metrics (``rlhf_core.eval.registry``); each module registers its own on import."""
