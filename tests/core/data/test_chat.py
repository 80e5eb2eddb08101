"""Conversation prompts of the [RF] pair tables and the pair-PM's plain template (docs/sources.md §2.4, §3.5)."""

from __future__ import annotations

from rlhf_core.data.chat import conversation_prompt, pair_pm_message, plain_context, prompt_messages


def test_a_conversation_prompt_reads_back_and_any_other_text_is_one_user_message():
    turns = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Q"},
    ]
    assert prompt_messages(conversation_prompt(turns)) == turns
    for text in ("What is 2+2?", "[1, 2] sorted?", '[{"role": "user"}]', '[{"role": "user", "content": "x"}] and more'):
        assert prompt_messages(text) == [{"role": "user", "content": text}]


def test_pair_pm_message_of_a_plain_prompt_is_the_builders_format():
    message = pair_pm_message(plain_context(prompt_messages("Best pizza topping?")), "Basil.", "Glue.")
    context = "\n\n\n<turn> user\n Best pizza topping?\n\n\n"
    assert message == f"[CONTEXT] {context} [RESPONSE A] Basil. [RESPONSE B] Glue. \n"
