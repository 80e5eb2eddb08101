"""[RF] ArmoRM as a reward model of the suite: a frozen backbone, stage-1 probes, stage-2 gating.

    model, report = fit_armo(backbone, tok, objective_rows, labels, pairs, train, verbosity_dim)
    model, report = fit_armo_tables(objective_table, objectives, pair_table, train, verbosity_dim)
    save_armo(model, out);  armo = load_armo(dir, spec);  scores = head_scores(armo, h, x)

Embeddings (docs/sources.md §2.5) come from the backbone without a head. Either this module makes
them (the demo): a response's ``embedding`` is the last-layer hidden state of the final token of
``prompt + response``, its ``prompt_embedding`` the state of the prompt's last token; or they are
the data layer's tables (``armorm_objective_embeddings`` / ``armorm_pair_embeddings``, [RF]'s
own recipe: chat-rendered conversations, the gating state at the last token pattern), and a
scorer embeds new text the same way (``chat_embeddings``). The objectives are columns of the
stage-1 table, or, on the demo, the gold judge's components.

The backbone stays frozen, so there is nothing for the Engine to train: stage 1 is ridge
regression and stage 2 the gating MLP in ``train/armo.py``'s own loop (the seed's cosine
schedule over sampled batches). As there, the gating is trained and validated on the debiased
rewards ``R = (W h) T`` that the released model serves (the seed trains on the untransformed
``W h``; docs/sources.md §10.10). A task without a verbosity objective has ``T = I``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from rlhf_core.config import TrainConfig
from rlhf_core.data.armo_embeddings import gating_positions, hidden_states_at, render
from rlhf_core.data.chat import prompt_messages
from rlhf_core.train.armo import (
    ArmoRM,
    GatingConfig,
    GatingNetwork,
    fit_probes,
    objective_arrays,
    pair_arrays,
    train_gating,
)

WEIGHTS = "armo.safetensors"


def embeddings(
    backbone, tokenizer, prompts: list[str], responses: list[str], max_length: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(embedding, prompt_embedding)`` of each response, each (N, H)."""
    seqs, positions = [], []
    for p, r in zip(prompts, responses):
        p_ids = tokenizer(p, add_special_tokens=False)["input_ids"]
        r_ids = tokenizer(r, add_special_tokens=False)["input_ids"]
        ids = (p_ids + r_ids)[-max_length:]  # the response is kept; the prompt is cut on the left
        prompt_end = max(0, len(p_ids) - 1 - (len(p_ids) + len(r_ids) - len(ids)))
        seqs.append(np.asarray(ids))
        positions.append([prompt_end, len(ids) - 1])
    states = hidden_states_at(backbone, seqs, positions)
    return np.stack([s[1] for s in states]), np.stack([s[0] for s in states])


def chat_embeddings(
    backbone, tokenizer, prompts: list[str], responses: list[str], pattern: tuple[int, ...], strip_bos_text: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(embedding, prompt_embedding)`` (N, H) of each response as the embedding builders make them:
    the conversation (a plain prompt is one user message) rendered with the chat template, the
    final token's state and the state where ``pattern`` last starts."""
    seqs, positions = [], []
    for i, (p, r) in enumerate(zip(prompts, responses)):
        conversation = [*prompt_messages(p), {"role": "assistant", "content": r}]
        ids = render(tokenizer, conversation, strip_bos_text=strip_bos_text)
        at = gating_positions(ids, pattern)
        if at is None:
            raise ValueError(f"armo: row {i}: token pattern {list(pattern)} not found in the rendered conversation")
        seqs.append(ids)
        positions.append(at)
    states = hidden_states_at(backbone, seqs, positions)
    return np.stack([s[1] for s in states]), np.stack([s[0] for s in states])


def fit_armo(
    backbone,
    tokenizer,
    objective_rows,
    labels: np.ndarray,
    pairs,
    train: TrainConfig,
    verbosity_dim: int | None,
    gating_steps: int | None = None,
) -> tuple[ArmoRM, dict]:
    """Stage 1 on ``objective_rows`` (prompt, completion) with ``labels`` (N, K), stage 2 on ``pairs``,
    embedded here by ``backbone``."""
    h, _ = embeddings(
        backbone, tokenizer, objective_rows["prompt"].tolist(), objective_rows["completion"].tolist(), train.max_length
    )
    prompts = pairs["prompt"].tolist()
    hc, xc = embeddings(backbone, tokenizer, prompts, pairs["chosen"].tolist(), train.max_length)
    hr, xr = embeddings(backbone, tokenizer, prompts, pairs["rejected"].tolist(), train.max_length)
    return _fit(h, labels, np.stack([hc, hr], 1), np.stack([xc, xr], 1), train, verbosity_dim, gating_steps)


def fit_armo_tables(
    objective_table,
    objectives: list[str],
    pair_table,
    train: TrainConfig,
    verbosity_dim: int | None,
    gating_steps: int | None = None,
) -> tuple[ArmoRM, dict]:
    """Stage 1 and stage 2 on the data layer's embedding tables (no backbone forward)."""
    h, labels = objective_arrays(objective_table, objectives)
    z, x = pair_arrays(pair_table)
    return _fit(h, labels, z, x, train, verbosity_dim, gating_steps, objectives)


def _fit(
    h: np.ndarray,
    labels: np.ndarray,
    z: np.ndarray,
    x: np.ndarray,
    train: TrainConfig,
    verbosity_dim: int | None,
    gating_steps: int | None,
    names: list[str] | None = None,
) -> tuple[ArmoRM, dict]:
    """Probes on ``h`` (N, H) / ``labels`` (N, K); gating on pairs ``z``, ``x`` (M, 2, H), for
    ``gating_steps`` (default: ``train.epochs`` over the 80% training pairs)."""
    probes = fit_probes(h, labels, names=names, split_seed=42)
    n_train = int(0.8 * len(z))
    steps = gating_steps or max(1, math.ceil(train.epochs * n_train / train.batch_size))
    cfg = GatingConfig(
        steps=steps,
        batch_size=train.batch_size,
        lr=train.lr,
        weight_decay=train.weight_decay,
        verbosity_dim=verbosity_dim,
        seed=train.seed,
    )
    model, report = train_gating(z, x, probes.weights, cfg)
    info = {
        "probe_alpha": probes.best_alpha,
        "probe_val_mse": [min(m) for m in probes.val_mse],
        "gating_val_accuracy": report.val_accuracy,
        "gating_steps": cfg.steps,
        "penalties": report.penalties.tolist(),
        "gating": {"hidden": cfg.hidden, "n_hidden": cfg.n_hidden, "temperature": cfg.temperature},
    }
    return model, {**info, "losses": report.losses}


def save_armo(model: ArmoRM, out: Path) -> None:
    from safetensors.torch import save_model

    save_model(model, str(Path(out) / WEIGHTS))


def load_armo(model_dir: str | Path, spec: dict) -> ArmoRM:
    """The ArmoRM head of an artifact (weights-only safetensors), shaped by its ``reward_model.json``."""
    from safetensors.torch import load_file

    state = load_file(str(Path(model_dir) / WEIGHTS))
    k, hidden = state["weights"].shape
    g = spec["gating"]
    model = ArmoRM(
        state["weights"],
        state["transform"],
        GatingNetwork(hidden, k, g["hidden"], g["n_hidden"], 0.0, g["temperature"]),
    )
    model.load_state_dict(state)
    return model.eval()


@torch.inference_mode()
def head_scores(
    armo: ArmoRM, embedding: np.ndarray, prompt_embedding: np.ndarray, objectives: bool = False
) -> np.ndarray:
    """Gated scores (...,), or with ``objectives`` the debiased per-objective rewards (..., K)."""
    h, x = torch.as_tensor(embedding, dtype=torch.float32), torch.as_tensor(prompt_embedding, dtype=torch.float32)
    return (armo.objective_rewards(h) if objectives else armo(h, x)).numpy()


def table_scores(model_dir: str | Path, spec: dict, pair_table) -> np.ndarray:
    """Gated scores (N, 2) of [chosen, rejected] of a stage-2 embedding table, by the artifact's head."""
    return head_scores(load_armo(model_dir, spec), *pair_arrays(pair_table))
