"""The judge stage: pairwise win rates of each policy's samples against a baseline's, on the same prompts (a
prompt's k-th sample against the baseline's k-th: ``rlhf_core.eval.judge.paired_rows``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rlhf_core.stages.base import TABLE, Context, Result, stage, table
from rlhf_core.stages.trials import VALIDATION, Trial, parse
from rlhf_core.store import ArtifactRef, write_table


@dataclass(frozen=True)
class Endpoint:
    """Where a chat judge is asked; the key is never shown (repr) and is in no artifact key."""

    base_url: str
    model: str
    api_key: str = field(default="", repr=False)


def comparisons(keys: list[str], against: str, pairs: list[list[str]]) -> list[tuple[str, str]]:
    """(model, baseline) partition keys: every test trial against the baseline algorithm's trial of the
    same seed, then the configured pairs."""
    present = set(keys)
    out = []
    for key in keys:
        trial = parse(key)
        if trial.algorithm == against or trial.split == VALIDATION:
            continue
        base = Trial(against, seed=trial.seed).key
        if base in present:
            out.append((key, base))
    missing = sorted({k for pair in pairs for k in pair} - present)
    if missing:
        raise ValueError(f"evaluation.judge.pairs: {missing} are not evaluated partitions; have {sorted(present)}")
    return out + [(m, b) for m, b in pairs]


def _judge(cfg: Any, endpoint: Endpoint | None, scorer_refs: dict[str, ArtifactRef], cache: Path):
    from rlhf_core.eval.judge import PROMPTS, ChatJudge, ReplyCache, ScoreJudge

    if cfg.kind == "scorer":
        from rlhf_core.stages.annotation import open_component

        return ScoreJudge(open_component(scorer_refs[cfg.scorer])[1], cfg.scorer)
    if endpoint is None:
        raise ValueError(
            "evaluation.judge kind chat needs an endpoint: set base_url and model (or "
            "RLHF_JUDGE_BASE_URL and RLHF_JUDGE_MODEL)"
        )
    import openai

    client = openai.OpenAI(
        base_url=endpoint.base_url,
        api_key=endpoint.api_key or "none",
        max_retries=cfg.max_retries,
        timeout=cfg.timeout_s,
    )
    return ChatJudge(
        client, endpoint.model, PROMPTS[cfg.prompt], ReplyCache(cache), cfg.temperature, cfg.max_tokens, cfg.concurrency
    )


@stage(lambda task: ["evaluation.judge"])
def judge_win_rates(
    ctx: Context,
    evaluations: dict[str, ArtifactRef],
    prompts_ref: ArtifactRef,
    scorer_refs: dict[str, ArtifactRef],
    endpoint: Endpoint | None,
) -> Result:
    """Win, tie and loss rates (with standard errors and the unparseable share) of each comparison,
    both orders asked, and the agreement of the configured components with the judge per source.

    A chat judge's replies are cached by content under ``<store>/<task>/judge_replies.sqlite``, shared
    by every run of the task: a re-run, even with other policies, asks only for pairs it has not seen.
    """
    from rlhf_core.eval.judge import agreement, compare, paired_rows, win_rates

    cfg = ctx.cfg.evaluation.judge
    pairs = comparisons(list(evaluations), cfg.against, [list(p) for p in cfg.pairs])
    cache = ctx.store.root / ctx.task / "judge_replies.sqlite"

    def build(out: Path, _: Path) -> dict[str, Any]:
        judge = _judge(cfg, endpoint, scorer_refs, cache)
        prompts = table(prompts_ref)
        sources = prompts.set_index("id")[cfg.source_column] if cfg.source_column else None
        rates, agree, verdicts = [], [], []
        for model, baseline in pairs:
            rows = paired_rows(table(evaluations[model]), table(evaluations[baseline]))
            shown = [p.removeprefix(cfg.strip_prefix) for p in rows["prompt"]]
            outcomes = compare(judge, shown, rows["completion"].tolist(), rows["completion_baseline"].tolist())
            outcomes.insert(0, "id", rows["id"].to_numpy()[outcomes["pair"]])
            verdicts.append(outcomes.assign(model=model, baseline=baseline))
            for criterion in judge.criteria:
                rates.append(
                    {"model": model, "baseline": baseline, "criterion": criterion, **win_rates(outcomes, criterion)}
                )
                source = None if sources is None else rows["id"].map(sources).astype(str).to_numpy()
                for component in cfg.agreement:
                    found = agreement(
                        outcomes,
                        criterion,
                        rows[component].to_numpy(),
                        rows[f"{component}_baseline"].to_numpy(),
                        source,
                    )
                    agree.append(found.assign(model=model, baseline=baseline, criterion=criterion, component=component))
        rates_df = pd.DataFrame(rates)
        write_table(rates_df, out / TABLE)
        write_table(pd.concat(verdicts, ignore_index=True), out / "verdicts.parquet")
        meta: dict[str, Any] = {
            "judge": getattr(judge, "model", None) or judge.name,
            "comparisons": len(pairs),
            "win_rates": rates_df,
        }
        if agree:
            agree_df = pd.concat(agree, ignore_index=True)
            write_table(agree_df, out / "agreement.parquet")
            meta["agreement"] = agree_df
        if hasattr(judge, "requests_sent"):
            meta["requests_sent"] = judge.requests_sent
        return meta

    judge_id = {"judge_model": endpoint.model} if cfg.kind == "chat" and endpoint is not None else {}
    parents = {
        **{f"evaluation/{k}": v for k, v in evaluations.items()},
        "prompts": prompts_ref,
        **({f"scorer/{cfg.scorer}": scorer_refs[cfg.scorer]} if cfg.kind == "scorer" else {}),
    }
    return ctx.build("judge_win_rates", None, parents, build, **judge_id)
