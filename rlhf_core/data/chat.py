"""Conversations as model text: chat-template rendering, and the conversation prompts of [RF] pair tables.

[RF]'s models read a conversation rendered by the tokenizer's chat template with the template's
BOS text removed, because tokenizing adds the tokenizer's own BOS (docs/sources.md §3.5, §5.5):

    text = chat_text(tokenizer, [*prompt_messages(prompt), {"role": "assistant", "content": response}])

A pair table keeps a multi-turn context in its ``prompt`` column as a JSON list of ``{role,
content}`` messages (``conversation_prompt``); any other prompt text is one user message, so a
scorer reads RewardBench's single-turn prompts and a pair table's contexts alike.

The pair-PM reads its context in a plain template of its own instead (docs/sources.md §2.4, §3.5):

    message = pair_pm_message(plain_context(prompt_messages(prompt)), response_a, response_b)
"""

from __future__ import annotations

import json


def chat_text(tokenizer, messages: list[dict], *, strip_bos_text: bool = True) -> str:
    """``messages`` rendered by the tokenizer's chat template (no generation prompt), BOS text removed."""
    if not tokenizer.chat_template:
        raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has no chat template to render conversations with")
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    if strip_bos_text and tokenizer.bos_token:
        text = text.replace(tokenizer.bos_token, "")
    return text


def conversation_prompt(messages: list[dict]) -> str:
    """A context of several messages as a ``prompt`` cell (read back by ``prompt_messages``)."""
    return json.dumps([{"role": m["role"], "content": m["content"]} for m in messages], ensure_ascii=False)


def prompt_messages(prompt: str) -> list[dict]:
    """The messages a prompt stands for: a ``conversation_prompt`` cell, else one user message."""
    if prompt.startswith("[{"):
        try:
            messages = json.loads(prompt)
        except json.JSONDecodeError:
            messages = None
        if isinstance(messages, list) and all(isinstance(m, dict) and set(m) == {"role", "content"} for m in messages):
            return messages
    return [{"role": "user", "content": prompt}]


def plain_context(messages: list[dict]) -> str:
    """[RF]'s plain template of a pair-PM context: ``\\n``, then ``\\n\\n<turn> {role}\\n {content}``
    per message, then ``\\n\\n\\n``."""
    return "\n" + "".join(f"\n\n<turn> {m['role']}\n {m['content']}" for m in messages) + "\n\n\n"


def pair_pm_message(context: str, first: str, second: str) -> str:
    """The pair-PM's user message: which of the two responses to the context is better."""
    return f"[CONTEXT] {context} [RESPONSE A] {first} [RESPONSE B] {second} \n"
