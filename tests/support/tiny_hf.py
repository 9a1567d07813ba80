"""A tiny, randomly initialised GPT-2 chat model built locally for tests.

Nothing here touches the network: the tokenizer is trained in-process on a small
built-in corpus with the ``tokenizers`` library, and the model is a one-layer
GPT-2 with random weights (``torch.manual_seed(0)``), so greedy generation is
deterministic but the text it produces is gibberish.

``torch``, ``transformers`` and ``tokenizers`` are imported lazily inside the
functions, so importing this module is cheap.

Typical use (see ``tests/conftest.py`` for the session fixture)::

    path = build_tiny_chat_model(tmp_path / "tiny")
    chat = make_tiny_chat_huggingface(path, max_new_tokens=8)
    chat.invoke("What is 2+2?")  # AIMessage with (gibberish) string content
"""

from __future__ import annotations

import pathlib
from typing import Any

__all__ = [
    "BOS_TOKEN",
    "CHAT_TEMPLATE",
    "DEFAULT_N_POSITIONS",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "ROLE_TOKENS",
    "UNK_TOKEN",
    "build_tiny_chat_model",
    "make_tiny_chat_huggingface",
]

BOS_TOKEN = "<|bos|>"
EOS_TOKEN = "<|eos|>"
PAD_TOKEN = "<|pad|>"
UNK_TOKEN = "<|unk|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")

#: Context length of the tiny model (and the tokenizer's ``model_max_length``).
#: The vocabulary is small, so text outside the training corpus costs several
#: tokens per word (about 4-6 for English prose with code in it). GPT-2 crashes
#: with ``IndexError`` on prompts longer than its position table, so the table is
#: generous: it is only ``n_positions * n_embd`` floats, and an 8000-token prompt
#: still runs in about 0.1 s on a CPU.
DEFAULT_N_POSITIONS = 8192

#: Renders each message as ``<|role|>\n{content}\n``; with
#: ``add_generation_prompt`` an ``<|assistant|>\n`` header is appended. Content
#: may be a string or a list of content blocks (only ``text`` blocks are kept).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' }}"
    "{% if message['content'] is string %}"
    "{{ message['content'] }}"
    "{% elif message['content'] %}"
    "{% for part in message['content'] %}"
    "{% if part is string %}{{ part }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "{{ '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

_CORPUS = (
    """\
Question: What is 2+2? Answer: 4
Question: What is 3+5? Answer: 8
Question: What is 6*7? Answer: 42
Question: What is 10-3? Answer: 7
Question: How many days are in a week? Answer: 7
Question: What is the capital of France? Answer: Paris
The answer is 42. The final answer is 12. Answer: 0 1 2 3 4 5 6 7 8 9 10 11 12
13 14 15 16 17 18 19 20 21 22 23 24 25 30 40 50 60 70 80 90 100 1000 3.14 0.5
You are a helpful assistant. Think step by step, then give the final answer on
the last line in the form Answer: <value>. Keep the reasoning short and clear.
Read the question carefully. If you are not sure, say so and explain why.
A small model writes a draft and a large model reviews it. The reviewer checks
each step, points out mistakes, and suggests a better plan. The writer revises
the draft and returns a new answer. They repeat this until the answer is good
or the budget is spent. Every call costs tokens, and tokens cost money.
The user asks a question about numbers, words, time, places or people. We add,
subtract, multiply and divide. First we find the total, then we compare the
parts. There were 12 apples and 5 oranges in the basket, so there were 17
pieces of fruit. Tom has 3 more books than Anna, who has 9 books; Tom has 12.
A train leaves at 9 and arrives at 11, so the trip takes 2 hours.
Please answer with a single number. Do not repeat the question. Use plain text.
Here is the plan: read, think, check, and answer. Is the result correct? Yes.
No, the result is wrong because the second step used the wrong number.
Summary: the draft was right; the guide was helpful; the final score is 1.
system user assistant guide draft revise select client server model prompt
what when where which who why how is are was were be been have has had do does
did can could will would should may might must the a an and or but if then else
of to in on at by for with from into over under about after before between
this that these those it its they them their we our you your he she his her
one two three four five six seven eight nine ten hundred thousand first second
true false none yes no ok error result value total sum difference product
"""
    * 2
)


def _train_tokenizer(vocab_size: int) -> Any:
    """Train a byte-level BPE tokenizer on the built-in corpus.

    Byte-level pre-tokenisation means any input string can be encoded (no unknown
    tokens); the unk token exists only because callers expect one to be set.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=None))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    special = [EOS_TOKEN, BOS_TOKEN, PAD_TOKEN, UNK_TOKEN, *ROLE_TOKENS]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_CORPUS.splitlines(), trainer=trainer)
    return tokenizer


def build_tiny_chat_model(
    path: pathlib.Path,
    *,
    vocab_size: int = 500,
    n_positions: int = DEFAULT_N_POSITIONS,
    seed: int = 0,
) -> pathlib.Path:
    """Build a tiny GPT-2 chat model and its tokenizer and save both into ``path``.

    Takes well under a second once ``torch``/``transformers`` are imported (the
    imports themselves take a few seconds). Needs no network; works with
    ``HF_HUB_OFFLINE=1``.

    The saved directory loads with the ordinary ``from_pretrained`` machinery, e.g.
    ``HuggingFacePipeline.from_model_id(model_id=str(path), task="text-generation")``.
    ``ChatHuggingFace(llm=..., model_id=str(path))`` also works offline: for a
    pipeline it calls ``AutoTokenizer.from_pretrained(model_id)``, which reads the
    local directory and never contacts the hub (``model_id`` must therefore be the
    local path, or pass ``tokenizer=`` explicitly). It does *not* read the
    ``model_id`` as a hub repo in any other way. :func:`make_tiny_chat_huggingface`
    wraps this and reuses the pipeline's tokenizer.

    Model: ``GPT2Config(n_layer=1, n_embd=32, n_head=2, n_positions=n_positions)``
    with random weights from ``torch.manual_seed(seed)``; greedy decoding. Prompts
    longer than ``n_positions`` tokens minus the generated tokens make GPT-2 raise
    ``IndexError``, so the default context (8192 tokens) is generous; pass
    ``handle_long_generation="hole"`` to the pipeline (as
    :func:`make_tiny_chat_huggingface` does) to left-truncate longer prompts.
    Tokenizer: byte-level BPE (``vocab_size`` 500 by default, so any text encodes)
    with ``<|bos|>``/``<|eos|>``/``<|pad|>``/``<|unk|>`` and the role tokens
    ``<|system|>``/``<|user|>``/``<|assistant|>`` as special tokens, and
    :data:`CHAT_TEMPLATE` as its chat template.

    Returns ``path``.
    """
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    path = pathlib.Path(path)
    path.mkdir(parents=True, exist_ok=True)

    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_train_tokenizer(vocab_size),
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        unk_token=UNK_TOKEN,
        additional_special_tokens=list(ROLE_TOKENS),
        model_max_length=n_positions,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    hf_tokenizer.chat_template = CHAT_TEMPLATE

    config = GPT2Config(
        n_layer=1,
        n_embd=32,
        n_head=2,
        n_positions=n_positions,
        vocab_size=len(hf_tokenizer),
        bos_token_id=hf_tokenizer.bos_token_id,
        eos_token_id=hf_tokenizer.eos_token_id,
        pad_token_id=hf_tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(config)
    model.eval()
    model.generation_config.pad_token_id = hf_tokenizer.pad_token_id
    model.generation_config.eos_token_id = hf_tokenizer.eos_token_id
    model.generation_config.bos_token_id = hf_tokenizer.bos_token_id
    model.generation_config.do_sample = False

    model.save_pretrained(path)
    hf_tokenizer.save_pretrained(path)
    return path


def make_tiny_chat_huggingface(
    path: pathlib.Path | str,
    *,
    max_new_tokens: int = 8,
    **pipeline_kwargs: Any,
) -> Any:
    """Load a model saved by :func:`build_tiny_chat_model` as a ``ChatHuggingFace``.

    Goes through ``HuggingFacePipeline.from_model_id`` (local directory, CPU) and
    hands the pipeline's own tokenizer to ``ChatHuggingFace`` so nothing is loaded
    twice and nothing is looked up on the hub. ``return_full_text`` is False so the
    message holds only the generated text. Extra keyword arguments go to the
    ``transformers`` pipeline. By default ``handle_long_generation="hole"``: prompts
    longer than the context are cut on the left instead of raising ``IndexError``.

    Offline behaviour worth knowing (langchain-huggingface 1.2): ``invoke`` and
    ``stream`` work; ``ainvoke`` raises ``NotImplementedError`` ("async generation
    is not supported with HuggingFacePipeline"); the returned ``AIMessage`` has no
    ``usage_metadata`` and an empty ``response_metadata``; ``stop=`` is ignored by
    ``invoke``.
    """
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline

    kwargs: dict[str, Any] = {
        "max_new_tokens": max_new_tokens,
        "return_full_text": False,
        "handle_long_generation": "hole",
    }
    kwargs.update(pipeline_kwargs)
    llm = HuggingFacePipeline.from_model_id(
        model_id=str(path), task="text-generation", pipeline_kwargs=kwargs
    )
    return ChatHuggingFace(llm=llm, model_id=str(path), tokenizer=llm.pipeline.tokenizer)
