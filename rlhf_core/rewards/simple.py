"""Model-free scorers: response length and tf-idf diversity (docs/sources.md §3.2 "tfidf")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rlhf_core.rewards.base import Needs, register

STATE_FILE = "tfidf_state.json"


@register("length")
class LengthScorer:
    """Number of whitespace words of the completion (docs/sources.md §7.2 avg_response_len)."""

    name = "length"
    version = "1"

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        return [float(len(c.split())) for c in completions]


@register("diversity")
class TfidfDiversityScorer:
    """Mean of the non-zero tf-idf entries of the response, times ``nnz/10`` when nnz < 5.

    The vectoriser (sklearn ``CountVectorizer()`` defaults + ``TfidfTransformer(smooth_idf=True,
    use_idf=True)``) is fitted on the training responses. Its state is kept as JSON
    (vocabulary and idf), never as a pickle.
    """

    name = "diversity"
    version = "1"
    needs = Needs(tables=("data",))  # fitted on the train-split completions of the annotated dataset

    def __init__(
        self, vocabulary: dict[str, int] | None = None, idf: list[float] | None = None, state_path: str | None = None
    ):
        if state_path is not None:
            state = json.loads(Path(state_path).read_text())
            vocabulary, idf = state["vocabulary"], state["idf"]
        if vocabulary is None or idf is None:
            raise ValueError("diversity scorer needs a fitted state: use TfidfDiversityScorer.fit(corpus)")
        from sklearn.feature_extraction.text import CountVectorizer

        self.vocabulary = {k: int(v) for k, v in vocabulary.items()}
        self.idf = np.asarray(idf, dtype=np.float64)
        self._counter = CountVectorizer(vocabulary=self.vocabulary)

    @classmethod
    def fit(cls, corpus: list[str]) -> TfidfDiversityScorer:
        from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer

        counter = CountVectorizer()
        counts = counter.fit_transform(corpus)
        tfidf = TfidfTransformer(smooth_idf=True, use_idf=True).fit(counts)
        return cls({k: int(v) for k, v in counter.vocabulary_.items()}, tfidf.idf_.tolist())

    @classmethod
    def prepare(
        cls, state_dir: Path, config: dict[str, Any], tables: dict[str, Any], state_path: str | None = None
    ) -> None:
        if state_path is not None:  # a state fitted elsewhere
            return
        if "data" not in tables:
            raise ValueError("diversity needs annotation.data to fit on, or params.state_path")
        data = tables["data"]
        train = data[data["split"] == "train"]["completion"].tolist() if "split" in data else []
        if not any(t.strip() for t in train):
            raise ValueError("no train-split completions to fit the tf-idf vectoriser on")
        cls.fit(train).save(state_dir / STATE_FILE)

    @classmethod
    def from_state(cls, state_dir: Path, state_path: str | None = None) -> TfidfDiversityScorer:
        return cls(state_path=state_path or str(Path(state_dir) / STATE_FILE))

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"vocabulary": self.vocabulary, "idf": self.idf.tolist()}))

    def __call__(self, prompts: list[str], completions: list[str], **kwargs: Any) -> list[float]:
        counts = self._counter.transform(completions).tocsr().astype(np.float64)
        # TfidfTransformer.transform: tf * idf, then l2-normalise each row.
        weighted = counts.multiply(self.idf).tocsr()
        scores = []
        for i in range(weighted.shape[0]):
            row = weighted.getrow(i).data
            if row.size == 0:
                scores.append(0.0)
                continue
            row = row / np.linalg.norm(row)
            nnz = row.size
            penalty = nnz / 10 if nnz < 5 else 1.0
            scores.append(float(row.mean() * penalty))
        return scores
