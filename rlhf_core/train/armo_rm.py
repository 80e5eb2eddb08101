"""[RF] ArmoRM as a reward model of the suite: a frozen backbone, stage-1 probes, stage-2 gating.

    model = fit_armo(backbone, tok, objective_rows, labels, pairs, objectives, train, verbosity=None)
    save_armo(model, out);  armo = load_armo(dir, spec);  scores = armo_scores(backbone, tok, armo, p, r)

Embeddings (docs/sources.md §2.5) come from the backbone without a head: a response's
``embedding`` is the last-layer hidden state of the final token of ``prompt + response``, its
``prompt_embedding`` the state of the prompt's last token (the token that closes the user turn,
which the seed finds with a token pattern of the chat template). The objectives are columns of
the stage-1 table, or, on the demo, the gold judge's components.

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
from rlhf_core.data.armo_embeddings import hidden_states_at
from rlhf_core.train.armo import ArmoRM, GatingConfig, GatingNetwork, fit_probes, train_gating

WEIGHTS = "armo.safetensors"


def embeddings(backbone, tokenizer, prompts: list[str], responses: list[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
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


def fit_armo(backbone, tokenizer, objective_rows, labels: np.ndarray, pairs, train: TrainConfig,
             verbosity_dim: int | None) -> tuple[ArmoRM, dict]:
    """Stage 1 on ``objective_rows`` (prompt, completion) with ``labels`` (N, K), stage 2 on ``pairs``."""
    h, _ = embeddings(backbone, tokenizer, objective_rows["prompt"].tolist(), objective_rows["completion"].tolist(),
                      train.max_length)
    probes = fit_probes(h, labels, split_seed=42)
    prompts = pairs["prompt"].tolist()
    hc, xc = embeddings(backbone, tokenizer, prompts, pairs["chosen"].tolist(), train.max_length)
    hr, xr = embeddings(backbone, tokenizer, prompts, pairs["rejected"].tolist(), train.max_length)
    n_train = int(0.8 * len(pairs))
    cfg = GatingConfig(steps=max(1, math.ceil(train.epochs * n_train / train.batch_size)), batch_size=train.batch_size,
                       lr=train.lr, weight_decay=train.weight_decay, verbosity_dim=verbosity_dim, seed=train.seed)
    model, report = train_gating(np.stack([hc, hr], 1), np.stack([xc, xr], 1), probes.weights, cfg)
    info = {"probe_alpha": probes.best_alpha, "probe_val_mse": [min(m) for m in probes.val_mse],
            "gating_val_accuracy": report.val_accuracy, "gating_steps": cfg.steps,
            "penalties": report.penalties.tolist(), "gating": {"hidden": cfg.hidden, "n_hidden": cfg.n_hidden,
                                                              "temperature": cfg.temperature}}
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
    model = ArmoRM(state["weights"], state["transform"],
                   GatingNetwork(hidden, k, g["hidden"], g["n_hidden"], 0.0, g["temperature"]))
    model.load_state_dict(state)
    return model.eval()


@torch.inference_mode()
def armo_scores(backbone, tokenizer, armo: ArmoRM, prompts: list[str], responses: list[str], max_length: int,
                objectives: bool = False) -> np.ndarray:
    """Gated scores (N,), or with ``objectives`` the debiased per-objective rewards (N, K)."""
    h, x = embeddings(backbone, tokenizer, prompts, responses, max_length)
    h, x = torch.as_tensor(h), torch.as_tensor(x)
    return (armo.objective_rewards(h) if objectives else armo(h, x)).numpy()
