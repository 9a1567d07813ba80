"""The real ChatHuggingFace over a tiny local model as a CoLM client."""

from __future__ import annotations

import os
import textwrap

import pytest

from colm_graph import ModelPool, create_colm_graph

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def hf_pool(tmp_path, model_dir) -> ModelPool:
    # a relative model directory is resolved against the pool file's folder
    model_dir = os.path.relpath(model_dir, tmp_path)
    path = tmp_path / "models.yaml"
    path.write_text(textwrap.dedent(f"""\
        models:
          - name: tiny
            provider: huggingface
            model: {model_dir}
            tier: local
            max_tokens: 8
            domains: [arithmetic]
          - name: sim-b
            provider: sim
            tier: local
            domains: [arithmetic]
          - name: sim-server
            provider: sim
            tier: paid
            price: {{input: 1.0, output: 2.0}}
        """))
    return ModelPool.from_yaml(path)


@pytest.mark.parametrize("mode", ["invoke", "ainvoke"])
async def test_tiny_hf_client_completes_and_tokens_are_counted(tmp_path, tiny_hf_model_dir,
                                                               mode):
    from transformers import AutoTokenizer

    pool = hf_pool(tmp_path, tiny_hf_model_dir)
    graph = create_colm_graph(pool=pool, clients=["tiny", "sim-b"], rounds=1)
    question = "What is 12 * (3 + 4) - 5?"
    out = graph.invoke({"question": question}) if mode == "invoke" else \
        await graph.ainvoke({"question": question})
    assert out["selected"] == ["tiny", "sim-b"] and out["stop_reason"]
    tiny = [c for c in out["ledger"] if c["model"] == "tiny"]
    assert [c["node"] for c in tiny] == ["draft", "revise"]
    tok = AutoTokenizer.from_pretrained(str(tiny_hf_model_dir))
    draft_text = next(r["text"] for r in out["responses"]
                      if r["client"] == "tiny" and r["round"] == 0)
    chat = pool.entry("tiny").chat_model
    messages = pool_prompt_messages(question)
    expected_in = len(tok.encode(chat._to_chat_prompt(messages), add_special_tokens=False))
    for c in tiny:
        assert c["tokens_estimated"] is False
        assert c["output_tokens"] >= 1  # re-encoding the decoded text may differ from 8 by a token
    assert tiny[0]["input_tokens"] == expected_in
    assert tiny[0]["output_tokens"] == len(tok.encode(draft_text, add_special_tokens=False))
    assert tiny[1]["input_tokens"] > tiny[0]["input_tokens"]  # revision prompt is longer


def pool_prompt_messages(question: str):
    from colm_graph.core.prompts import load_prompts

    return load_prompts().messages("client_draft", client_name="tiny",
                                   client_domains="arithmetic", question=question)
