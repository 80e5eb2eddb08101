"""A tiny GPT-2 policy and its tokenizer, built in code for the online-RL and PRO tests."""
from rlhf_core.config import TinyGPTConfig
from rlhf_core.models.load import build_causal_lm, train_tokenizer

WORDS = "good bad nice awful happy sad the a cat dog sat ran on mat fast slow very".split()
CORPUS = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 4


def tiny_policy(seed: int = 0, n_embd: int = 32, n_layer: int = 1, dropout: float = 0.0):
    tok = train_tokenizer(CORPUS, vocab_size=300, min_frequency=1)
    model = build_causal_lm(TinyGPTConfig(n_layer=n_layer, n_head=2, n_embd=n_embd, n_positions=96,
                                          dropout=dropout), tok, seed)
    return model, tok
