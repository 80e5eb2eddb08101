"""A trained ArmoRM (``kind: armo``) as a scorer: backbone embeddings through the gated head."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rlhf_core.rewards.model_loading import load_model_and_tokenizer


class ArmoScorer:
    """``score = Σ_k g_k(prompt) R_k(prompt + response)`` (docs/sources.md §3.5, §5.7)."""

    name = "reward_model"

    def __init__(self, model: str, spec: dict[str, Any], device: str | None = None, **_: Any):
        from transformers import AutoModel

        from rlhf_core.train.armo_rm import load_armo

        self.spec = spec
        self.backbone, self.tokenizer, self.device = load_model_and_tokenizer(AutoModel, model, None, device)
        self.armo = load_armo(model, spec).to(self.device)
        self.version = f"1+armo+{Path(model).resolve()}"

    def objective_rewards(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """The debiased per-objective rewards (N, K), in the order of ``spec["objectives"]``."""
        from rlhf_core.train.armo_rm import armo_scores

        return armo_scores(self.backbone, self.tokenizer, self.armo, list(prompts), list(completions),
                           self.spec["max_length"], objectives=True)

    def gating(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """The gating network's weights (N, K) for each prompt (read at the prompt's last token of
        ``prompt + completion``, as in scoring), ``logit_scale`` included."""
        import torch

        from rlhf_core.train.armo_rm import embeddings

        _, x = embeddings(self.backbone, self.tokenizer, list(prompts), list(completions), self.spec["max_length"])
        with torch.inference_mode():
            return self.armo.gating(torch.as_tensor(x, device=self.device)).cpu().numpy()

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        from rlhf_core.train.armo_rm import armo_scores

        return armo_scores(self.backbone, self.tokenizer, self.armo, prompts, completions,
                           self.spec["max_length"]).tolist()
