"""The chat judge end to end against a real OpenAI-compatible server: ``transformers serve`` on a tiny,
randomly initialised chat model started here on 127.0.0.1 (no download, no canned HTTP stub).

The model knows six tokens ("m", "M", "x" and three specials) and its head is all zeros, so a judge
sampling at temperature 1 gets each with probability 1/6: its one-token verdicts on the alpaca_eval
prompt are a mix of readable ones and garbage, and the unparseable share must count exactly the
garbage. Its [LoL] replies cannot spell a verdict at all.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from rlhf_core.config import load_config, task_config_path
from rlhf_core.stages.base import TABLE
from rlhf_core.stages.judge import Endpoint, judge_win_rates
from rlhf_core.store import ArtifactStore, read_table, write_table

SERVE = Path(sys.executable).with_name("transformers")
STARTUP_S = 300  # a loaded 2-core machine needs minutes to import torch, transformers and fastapi


def tiny_chat_model(path: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {c: i for i, c in enumerate(["<unk>", "<s>", "</s>", "m", "M", "x"])}  # other characters: <unk>
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")  # one token per character
    tok.decoder = decoders.Fuse()
    template = (
        "{% for m in messages %}<s>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<s>assistant: {% endif %}"
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", chat_template=template
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            bos_token_id=1,
            eos_token_id=2,
            pad_token_id=0,
            tie_word_embeddings=False,
        )
    )
    with torch.no_grad():
        model.lm_head.weight.zero_()
    model.generation_config.do_sample = True  # the server samples only models whose generation config says so
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not SERVE.exists() or shutil.which(str(SERVE)) is None:
        pytest.fail(f"{SERVE} is missing: install the dev extra (transformers serve needs fastapi and openai)")
    model = tiny_chat_model(tmp_path_factory.mktemp("judge_model"))
    port = free_port()
    log = (tmp_path_factory.mktemp("serve") / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            str(SERVE),
            "serve",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--device",
            "cpu",
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    import httpx

    deadline = time.monotonic() + STARTUP_S
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"transformers serve did not start: {Path(log.name).read_text()[-2000:]}")
        time.sleep(1)
    yield Endpoint(f"http://127.0.0.1:{port}/v1", str(model), api_key="sk-test-never-logged")
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def evaluation(store: ArtifactStore, partition: str, rows: pd.DataFrame):
    def build(out, _):
        write_table(rows, out / TABLE)
        return {"summary": {"n": len(rows)}}

    return store.build("demo", "evaluation", partition, {"rows": rows.to_json()}, build)


def prompts_table(store: ArtifactStore, ids: list[int]):
    def build(out, _):
        write_table(
            pd.DataFrame(
                {
                    "id": ids,
                    "prompt": [f"question {i}" for i in ids],
                    "source": ["koala" if i % 2 else "oasst" for i in ids],
                }
            ),
            out / TABLE,
        )
        return {}

    return store.build("demo", "prompts", None, {"ids": ids}, build)


def run(store, endpoint, n: int, prompt: str = "alpaca_eval"):
    judge = (
        f"{{kind: chat, prompt: {prompt}, temperature: 1.0, agreement: [rm], source_column: source, concurrency: 2}}"
    )
    task = load_config(task_config_path("demo"), [f"evaluation.judge={judge}"])
    ids = list(range(n))
    base = pd.DataFrame(  # an evaluation table's rows: one sample per test prompt
        {
            "id": ids,
            "prompt": [f"question {i}" for i in ids],
            "split": "test",
            "sample": 0,
            "completion": [f"answer {i}" for i in ids],
            "rm": [0.0] * n,
        }
    )
    model = base.assign(completion=[f"a better answer to {i}" + "!" * i for i in ids], rm=[1.0] * n)
    evaluations = {"sft": evaluation(store, "sft", base), "dpo": evaluation(store, "dpo", model)}
    return judge_win_rates(task, store, evaluations, prompts_table(store, ids), {}, endpoint)


def test_win_rates_from_a_real_server_count_garbage_and_reuse_cached_replies(server, tmp_path):
    store = ArtifactStore(tmp_path / "store")
    ref, meta = run(store, server, 12)
    assert meta["requests_sent"] == 24  # 12 prompts x both orders
    verdicts = read_table(Path(ref.path) / "verdicts.parquet")
    assert len(verdicts) == 24 and set(verdicts["order"]) == {"model_first", "model_second"}
    readable = verdicts["reply"].str.strip().isin(["m", "M"])
    rates = read_table(Path(ref.path) / TABLE).iloc[0]
    assert rates["unparseable_share"] == pytest.approx(1 - readable.mean())
    assert 0 < readable.sum() < 24, verdicts["reply"].tolist()  # both kinds: fails with probability < 1e-4
    assert rates["win_rate"] + rates["tie_rate"] + rates["loss_rate"] == pytest.approx(1.0)
    agreement = read_table(Path(ref.path) / "agreement.parquet")
    assert set(agreement["source"]) <= {"koala", "oasst"}
    assert "sk-test-never-logged" not in (Path(ref.path) / "meta.json").read_text()

    # One more prompt: a new artifact, but only its two orders reach the server.
    _, again = run(store, server, 13)
    assert again["requests_sent"] == 2


def test_lol_replies_of_a_random_model_are_counted_unparseable(server, tmp_path):
    _, meta = run(ArtifactStore(tmp_path / "store"), server, 2, prompt="lol_hha")
    rates = meta["win_rates"].set_index("criterion")
    assert list(rates.index) == ["helpful", "safe"] and meta["requests_sent"] == 4
    assert rates.loc["helpful", "unparseable_share"] == 1.0 and rates.loc["helpful", "pairs_judged"] == 0
