"""The models and tensor plumbing of the online RL engine (``ppo.py``): critics, the inputs that
score a response, per-token log-probs, and where a reward segment ends."""

from __future__ import annotations

import torch
from torch import nn

BUFFER_KEYS = (
    "prompt_ids",
    "prompt_mask",
    "response_ids",
    "mask",
    "logp",
    "ref_logp",
    "values",
    "raw_rewards",
    "advantages",
    "returns",
    "kl",
)


class ValueHead(nn.Module):
    """TRL's value head on a shared trunk: dropout + Linear(hidden, 1) on the last hidden state."""

    def __init__(self, hidden: int, dropout: float):
        super().__init__()
        self.dropout, self.summary = nn.Dropout(dropout), nn.Linear(hidden, 1)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.summary(self.dropout(hidden.float())).squeeze(-1)


class ValueModel(nn.Module):
    """[FG]'s separate critic: a trunk (any HF model) + Linear(d, d) -> GELU -> Linear(d, 1)."""

    def __init__(self, trunk: nn.Module):
        super().__init__()
        d = trunk.config.hidden_size
        self.trunk = trunk
        self.head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, 1))

    def forward(self, batch: dict[str, torch.Tensor], start: int, width: int) -> torch.Tensor:
        out = self.trunk(**batch, output_hidden_states=True)
        return self.head(last_hidden(out)[:, start : start + width].float()).squeeze(-1)


class ActorCritic(nn.Module):
    """The policy and its critic (None: critic-free) as the one module the training engine prepares, so
    that over several processes one wrapper synchronises both: ``forward`` gives the policy's per-token
    log-probs and the critic's values of the response tokens."""

    def __init__(self, policy: nn.Module, critic: nn.Module | None):
        super().__init__()
        self.policy, self.critic = policy, critic

    def forward(
        self, batch: dict[str, torch.Tensor], start: int, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        shared = isinstance(self.critic, ValueHead)
        logp, hidden = response_logp(self.policy, batch, start, targets, shared)
        if self.critic is None:
            return logp, None
        return logp, self.critic(hidden) if shared else self.critic(batch, start, targets.shape[1])


def segment_positions(tokenizer, text: str, ends: list[int]) -> list[int]:
    """[FG]: the token that ends a segment is len(tokenize(text[:end])) - 1 (clipped to the
    response later by ``place_segment_rewards``)."""
    if not ends:
        return []
    prefixes = tokenizer([text[:e] for e in ends], add_special_tokens=False)["input_ids"]
    return [max(len(p) - 1, 0) for p in prefixes]


def model_inputs(buf: dict[str, torch.Tensor], idx, decoder_start: int | None) -> tuple[dict, int]:
    """Inputs that score the response tokens of rows ``idx``, and where response token 0's logit sits.

    Causal LM: prompt + response as one left-padded sequence, positions counting real tokens only.
    Encoder-decoder: the prompt into the encoder, the response teacher-forced after the start token.
    """
    prompt_ids, prompt_mask, resp = buf["prompt_ids"][idx], buf["prompt_mask"][idx], buf["response_ids"][idx]
    if decoder_start is not None:
        start = torch.full_like(resp[:, :1], decoder_start)
        return {
            "input_ids": prompt_ids,
            "attention_mask": prompt_mask,
            "decoder_input_ids": torch.cat([start, resp[:, :-1]], dim=1),
        }, 0
    ids = torch.cat([prompt_ids, resp], dim=1)
    mask = torch.cat([prompt_mask, buf["mask"][idx].long()], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions}, prompt_ids.shape[1] - 1


def last_hidden(out) -> torch.Tensor:
    states = getattr(out, "decoder_hidden_states", None)
    return (states if states is not None else out.hidden_states)[-1]


def response_logp(
    model, batch: dict[str, torch.Tensor], start: int, targets: torch.Tensor, hidden: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log pi(y_t | ...) of the response tokens (the logit of token t sits at position start + t)."""
    out = model(**batch, output_hidden_states=hidden)
    width = targets.shape[1]
    logits = out.logits[:, start : start + width].float()
    logp = torch.gather(logits, 2, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return logp, last_hidden(out)[:, start : start + width] if hidden else None
