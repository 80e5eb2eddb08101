"""A trained ArmoRM (``kind: armo``) as a scorer: backbone embeddings through the gated head.

The backbone is the artifact's own (an ArmoRM whose embeddings it made itself, the demo) or the
one its ``reward_model.json`` names (``backbone``: an ArmoRM trained on the data layer's
embedding tables), read the way those tables were made (chat template, token pattern).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_core.rewards.model_loading import load_model_and_tokenizer


class ArmoScorer:
    """``score = Σ_k g_k(prompt) R_k(prompt + response)`` (docs/sources.md §3.5, §5.7)."""

    name = "reward_model"

    def __init__(self, model: str, spec: dict[str, Any], device: str | None = None, **_: Any):
        from transformers import AutoModel

        from rlhf_core.train.armo_rm import load_armo

        self.spec = spec
        self.version = f"1+armo+{Path(model).resolve()}"
        if "backbone" in spec:  # the embedding tables' backbone (the artifact is keyed by those tables)
            from rlhf_core.data.armo_embeddings import load_backbone

            self.backbone, self.tokenizer = load_backbone(spec["backbone"], builder="armo scorer", device=device)
            self.device = next(self.backbone.parameters()).device
        else:
            self.backbone, self.tokenizer, self.device = load_model_and_tokenizer(AutoModel, model, None, device)
        self.armo = load_armo(model, spec)  # a small head: on the CPU, where the embeddings arrive

    def embeddings(self, prompts: Sequence[str], completions: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(embedding, prompt_embedding)`` (N, H) of each response, as this ArmoRM was trained on."""
        from rlhf_core.train.armo_rm import chat_embeddings, embeddings

        if "backbone" in self.spec:
            return chat_embeddings(
                self.backbone,
                self.tokenizer,
                list(prompts),
                list(completions),
                tuple(self.spec["token_pattern"]),
                self.spec["strip_bos_text"],
            )
        return embeddings(self.backbone, self.tokenizer, list(prompts), list(completions), self.spec["max_length"])

    def objective_rewards(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """The debiased per-objective rewards (N, K), in the order of ``spec["objectives"]``."""
        from rlhf_core.train.armo_rm import head_scores

        return head_scores(self.armo, *self.embeddings(prompts, completions), objectives=True)

    def gating(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        """The gating network's weights (N, K) for each prompt (read at the prompt's last token of
        ``prompt + completion``, as in scoring), ``logit_scale`` included."""
        import torch

        _, x = self.embeddings(prompts, completions)
        with torch.inference_mode():  # the head is on the CPU, as in head_scores
            return self.armo.gating(torch.as_tensor(x, dtype=torch.float32)).numpy()

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        from rlhf_core.train.armo_rm import head_scores

        return head_scores(self.armo, *self.embeddings(prompts, completions)).tolist()
