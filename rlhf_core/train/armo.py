"""[RF] ArmoRM on precomputed backbone embeddings (docs/sources.md §5.7; embeddings §2.5).

Stage 1 fits one ridge probe per objective, ``r = W h`` (``W``: K × H), choosing each objective's
alpha by validation MSE. Stage 2 measures how much every objective leans on verbosity, builds the
debiasing transform ``T`` and trains a gating network on the prompt embedding so that the
gated reward ``Σ_k g_k R_k`` orders preference pairs (the BCE pair loss,
``rm_losses.armo_pair_loss``). The probes are scikit-learn ridge fits; the gating trains on the
training engine (``loop.Engine``) and the served model is returned on CPU:

    probes = fit_probes(objective_embeddings, labels)
    model, report = train_gating(pair_embeddings, pair_prompt_embeddings, probes.weights)
    reward = model(embeddings, prompt_embeddings)

Two decisions that depart from the seed's ``stage-2_train.py``, both so that what is trained is
what is served:

* **Train on the debiased rewards.** The seed computes ``R = (W h) T`` but trains and evaluates
  the gating on the untransformed ``W h``; the released model then applies ``T`` at inference
  (``coeffs = gating @ Tᵀ``), so its gating weights were learned for rewards it never sees
  (docs/sources.md §10.10). Here the gating is trained, validated and served on ``R``, the
  quantity the released model's formula computes.
* **Softmax over the objectives.** The seed's gating network applies ``softmax(dim=1)`` to a
  (batch, 2, K) input, which normalises each objective over the chosen/rejected slot instead of
  over the K objectives; the released model (input (batch, H)) and the paper normalise over the
  objectives, which is what ``GatingNetwork`` does for any input shape.

The seed samples batches from an unseeded global RNG; here every random draw comes from ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import spearmanr
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from torch import nn

from rlhf_core.config import TrainConfig
from rlhf_core.train.loop import Engine
from rlhf_core.train.rm_losses import armo_pair_loss

RIDGE_ALPHAS = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1e3, 1e4)
VERBOSITY_PENALTIES = (
    0,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.125,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.45,
    0.5,
    0.55,
    0.6,
    0.65,
    0.7,
    0.75,
    0.8,
    0.85,
    0.9,
    0.95,
)
VERBOSITY_DIM = 4  # helpsteer-verbosity among the 19 ArmoRM attributes
CORR_THRESHOLD = 0.03  # stage 2's default (the penalty function's own default, 0.028, is unused there)


# ----------------------------------------------------------------------------- stage 1


@dataclass
class Probes:
    """Stage-1 result: ``weights`` (K, H), and per objective the chosen alpha and the validation
    MSE of every alpha tried (``val_mse[k][i]`` belongs to ``alphas[i]``)."""

    weights: np.ndarray
    alphas: tuple[float, ...]
    best_alpha: list[float]
    val_mse: list[list[float]]


def fit_probes(
    embeddings: np.ndarray,
    labels: np.ndarray,
    alphas: tuple[float, ...] = RIDGE_ALPHAS,
    names: list[str] | None = None,
    split_seed: int = 42,
) -> Probes:
    """One ``Ridge(alpha, fit_intercept=False)`` per objective (column of ``labels``, NaN where
    missing) on an 80/20 split of the rows (``random_state`` 42, as the seed). For each objective
    the alpha with the lowest validation MSE wins; its coefficients (fit on the train part only)
    become that objective's row of ``W``.
    """
    x, y = np.asarray(embeddings, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"fit_probes: need embeddings (N, H) and labels (N, K), got {x.shape} and {y.shape}")
    names = names or [f"objective {k}" for k in range(y.shape[1])]
    x_tr, x_va, y_tr, y_va = train_test_split(x, y, test_size=0.2, random_state=split_seed)
    weights, best, losses = [], [], []
    for k, name in enumerate(names):
        tr, va = ~np.isnan(y_tr[:, k]), ~np.isnan(y_va[:, k])
        if not tr.any() or not va.any():
            raise ValueError(
                f"fit_probes: objective {name!r} has no label in the "
                f"{'train' if not tr.any() else 'validation'} part of the split"
            )
        fits = [Ridge(alpha=a, fit_intercept=False).fit(x_tr[tr], y_tr[tr, k]) for a in alphas]
        mse = [float(np.mean((f.predict(x_va[va]) - y_va[va, k]) ** 2)) for f in fits]
        i = int(np.argmin(mse))  # first minimum on ties, as pandas' idxmin in the seed
        weights.append(fits[i].coef_)
        best.append(alphas[i])
        losses.append(mse)
    return Probes(np.stack(weights), tuple(alphas), best, losses)


def objective_arrays(table, attributes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings (N, H), labels (N, K))`` from a stage-1 embedding table (an ``embedding``
    column plus one column per attribute, NaN where missing)."""
    missing = [c for c in ["embedding", *attributes] if c not in table.columns]
    if missing:
        raise ValueError(f"stage-1 embedding table lacks column(s) {missing}")
    return np.stack(table["embedding"].map(np.asarray).tolist()), table[attributes].to_numpy(dtype=np.float64)


def pair_arrays(table) -> tuple[np.ndarray, np.ndarray]:
    """``(embeddings, prompt_embeddings)``, each (N, 2, H) as [chosen, rejected], from a stage-2
    pair-embedding table."""
    missing = [c for c in ("embedding", "prompt_embedding") if c not in table.columns]
    if missing:
        raise ValueError(f"stage-2 embedding table lacks column(s) {missing}")
    return tuple(np.stack([np.stack(list(pair)) for pair in table[c]]) for c in ("embedding", "prompt_embedding"))


# ----------------------------------------------------------------------------- stage 2: debiasing


def verbosity_penalties(
    rewards: np.ndarray,
    verbosity_dim: int = VERBOSITY_DIM,
    threshold: float = CORR_THRESHOLD,
    candidates: tuple[float, ...] = VERBOSITY_PENALTIES,
) -> np.ndarray:
    """Per objective j ≠ verbosity, the smallest candidate λ with
    ``Spearman(r_j − λ r_verbosity, r_verbosity) ≤ threshold``; 1 where none gets there, and 1 for
    the verbosity objective itself. ``rewards`` (M, K): probe rewards of every reference response
    (chosen and rejected stacked)."""
    r = np.asarray(rewards, dtype=np.float64)
    verbosity = r[:, verbosity_dim]
    penalties = np.ones(r.shape[1])
    for j in range(r.shape[1]):
        if j == verbosity_dim:
            continue
        for lam in sorted(candidates):
            if spearmanr(r[:, j] - lam * verbosity, verbosity).statistic <= threshold:
                penalties[j] = lam
                break
    return penalties


def reward_transform(penalties: np.ndarray, verbosity_dim: int = VERBOSITY_DIM) -> torch.Tensor:
    """``T = I`` with ``T[verbosity, :] −= λ``, so ``R = r T`` gives ``R_j = r_j − λ_j r_verbosity``
    and zeroes the verbosity objective (its λ is 1)."""
    t = torch.eye(len(penalties), dtype=torch.float32)
    t[verbosity_dim, :] -= torch.as_tensor(penalties, dtype=torch.float32)
    return t


# ----------------------------------------------------------------------------- stage 2: gating


class GatingNetwork(nn.Module):
    """MLP on the prompt embedding: ``n_hidden`` Linear+ReLU(+dropout) layers, a Linear to K, then
    ``softmax(x / temperature)`` over the K objectives times a learnable ``logit_scale``."""

    def __init__(
        self,
        in_features: int,
        n_objectives: int,
        hidden: int = 1024,
        n_hidden: int = 3,
        dropout: float = 0.2,
        temperature: float = 10.0,
        logit_scale: float = 1.0,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_hidden):
            layers += [nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout)]
            in_features = hidden
        self.mlp = nn.Sequential(*layers, nn.Linear(in_features, n_objectives))
        self.temperature = temperature
        self.logit_scale = nn.Parameter(torch.tensor([float(logit_scale)]))

    def forward(self, prompt_embedding: torch.Tensor) -> torch.Tensor:
        return F.softmax(self.mlp(prompt_embedding) / self.temperature, dim=-1) * self.logit_scale


class ArmoRM(nn.Module):
    """The served model: ``score = Σ_k g_k(prompt) · ((W h) T)_k``, i.e. the released model's
    ``Σ_j r_j (g Tᵀ)_j``. ``W`` and ``T`` are buffers, so ``state_dict()`` holds the whole model."""

    def __init__(self, weights: torch.Tensor, transform: torch.Tensor, gating: GatingNetwork):
        super().__init__()
        self.register_buffer("weights", torch.as_tensor(weights, dtype=torch.float32))
        self.register_buffer("transform", torch.as_tensor(transform, dtype=torch.float32))
        self.gating = gating

    def objective_rewards(self, embedding: torch.Tensor) -> torch.Tensor:
        """Debiased per-objective rewards ``R = (W h) T`` (..., K)."""
        return embedding @ self.weights.T @ self.transform

    def forward(self, embedding: torch.Tensor, prompt_embedding: torch.Tensor) -> torch.Tensor:
        return (self.objective_rewards(embedding) * self.gating(prompt_embedding)).sum(-1)


@dataclass
class GatingConfig:
    """Stage-2 settings; the defaults are the seed's."""

    steps: int = 2000
    batch_size: int = 1024  # pairs, drawn with replacement
    lr: float = 1e-3
    weight_decay: float = 0.0
    hidden: int = 1024
    n_hidden: int = 3
    dropout: float = 0.2
    temperature: float = 10.0
    logit_scale: float = 1.0
    verbosity_dim: int | None = VERBOSITY_DIM  # None: no verbosity objective, no debiasing (T = I)
    corr_threshold: float = CORR_THRESHOLD
    split_seed: int = 0
    seed: int = 0


@dataclass
class GatingReport:
    penalties: np.ndarray
    val_accuracy: float  # share of held-out pairs with score(chosen) > score(rejected)
    n_train: int
    n_val: int
    losses: list[float] = field(default_factory=list)  # training loss per step


def train_gating(
    embeddings: np.ndarray,
    prompt_embeddings: np.ndarray,
    weights: np.ndarray,
    config: GatingConfig | None = None,
    reference_embeddings: np.ndarray | None = None,
) -> tuple[ArmoRM, GatingReport]:
    """Stage 2 on pair embeddings (N, 2, H), [chosen, rejected], with the stage-1 ``weights`` (K, H).

    The verbosity penalties come from the probe rewards of ``reference_embeddings`` (M, 2, H;
    default: the training pairs themselves, as in the seed). Pairs are split 80/20
    (``random_state`` 0); each step draws ``batch_size`` training pairs with replacement and takes
    an AdamW step on ``BCEWithLogits(score_c − score_r, 1)`` under a cosine schedule over ``steps``
    (the training engine's: ``CosineAnnealingLR``'s curve, unclipped as in the seed).
    """
    cfg = config or GatingConfig()
    z = torch.as_tensor(np.asarray(embeddings), dtype=torch.float32)
    x = torch.as_tensor(np.asarray(prompt_embeddings), dtype=torch.float32)
    w = torch.as_tensor(np.asarray(weights), dtype=torch.float32)
    if z.ndim != 3 or z.shape[1] != 2 or x.shape != z.shape or w.shape[1] != z.shape[2]:
        raise ValueError(
            f"train_gating: need embeddings and prompt embeddings (N, 2, H) and weights (K, H), "
            f"got {tuple(z.shape)}, {tuple(x.shape)}, {tuple(w.shape)}"
        )
    if len(z) < 5:
        raise ValueError(f"train_gating: {len(z)} pairs cannot make an 80/20 split")
    ref = z if reference_embeddings is None else torch.as_tensor(np.asarray(reference_embeddings), dtype=torch.float32)
    if cfg.verbosity_dim is None:
        penalties = np.zeros(w.shape[0])
    else:
        penalties = verbosity_penalties(
            (ref @ w.T).reshape(-1, w.shape[0]).numpy(), cfg.verbosity_dim, cfg.corr_threshold
        )
    torch.manual_seed(cfg.seed)  # the gating network's initial weights
    gating = GatingNetwork(
        x.shape[-1], w.shape[0], cfg.hidden, cfg.n_hidden, cfg.dropout, cfg.temperature, cfg.logit_scale
    )
    transform = torch.eye(w.shape[0]) if cfg.verbosity_dim is None else reward_transform(penalties, cfg.verbosity_dim)
    model = ArmoRM(w, transform, gating)
    train_idx, val_idx = (
        torch.as_tensor(i) for i in train_test_split(np.arange(len(z)), test_size=0.2, random_state=cfg.split_seed)
    )
    train = TrainConfig(
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        weight_decay=cfg.weight_decay,
        lr_schedule="cosine",
        max_grad_norm=math.inf,
        seed=cfg.seed,
    )
    engine = Engine(model, train, cfg.steps)
    model, device = engine.unwrapped, engine.device
    zd, xd = z.to(device), x.to(device)

    def pair_loss(batch: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        score = engine.model(zd[batch], xd[batch])  # (B, 2)
        return armo_pair_loss(score[:, 0], score[:, 1]), {}

    draw = torch.Generator().manual_seed(cfg.seed)
    losses = []
    model.train()
    for _ in range(cfg.steps):
        batch = train_idx[torch.randint(len(train_idx), (cfg.batch_size,), generator=draw)]
        done, _ = engine.step([batch.to(device)], pair_loss, [1.0])
        losses.append(done[0]["loss"])
    model = model.cpu().eval()
    with torch.no_grad():
        val = model(z[val_idx], x[val_idx])
    accuracy = float((val[:, 0] > val[:, 1]).float().mean())
    return model, GatingReport(penalties, accuracy, len(train_idx), len(val_idx), losses)
