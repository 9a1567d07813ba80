"""Provider ``huggingface``: a local model directory served by a ``transformers``
text-generation pipeline (``HuggingFacePipeline``) and wrapped in ``ChatHuggingFace``.

What this wrapper adds to the stock one:

* **Usage**: token counts from the model's own tokenizer (the pipeline reports none): the
  rendered chat prompt for input tokens, the generated text for output tokens.
* **Async**: ``ainvoke`` works; generation runs on a worker thread, never on the event loop.
* **One model per directory**: pool entries with the same resolved directory and the same
  generation and batching settings share one loaded pipeline (:func:`shared_pipeline`, a
  thread-safe module-level cache; :func:`clear_pipeline_cache` releases it). Each entry still
  reports its own pool name as ``response_metadata["model_name"]``.
* **Micro-batching**: concurrent requests to a shared pipeline (parallel clients under
  ``invoke`` threads or ``ainvoke`` tasks) are gathered for ``batch_wait_s`` (default 5 ms)
  or until ``max_batch`` (default 8) are waiting, and run as one batched pipeline call with
  left padding (see :mod:`colm_graph.pool.providers.hf_batch`). A lone request waits at most
  ``batch_wait_s``. Greedy output is the same batched or alone. Only the batcher's worker
  thread calls the pipeline; ``stream``/``astream`` yield the whole text as one chunk, and
  ``stop`` is ignored (as by ``HuggingFacePipeline``).

Settings: ``max_tokens`` of the pool entry is ``max_new_tokens`` (default 256); a positive
``temperature`` turns sampling on. Pool files have no batching fields: entries built from a
pool use the defaults above; :func:`build` takes ``max_batch``/``batch_wait_s`` (no
environment variables), and ``max_batch=1`` turns batching off.

Only local directories are loaded (``local_files_only``): nothing is fetched from a hub.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_huggingface import ChatHuggingFace
from pydantic import Field

from colm_graph.pool.providers.hf_batch import PipelineBatcher, prepare_tokenizer

if TYPE_CHECKING:
    from langchain_core.messages.ai import UsageMetadata

    from colm_graph.pool.spec import ModelSpec

__all__ = [
    "DEFAULT_BATCH_WAIT_S",
    "DEFAULT_MAX_BATCH",
    "DEFAULT_MAX_NEW_TOKENS",
    "LocalChatHuggingFace",
    "SharedPipeline",
    "build",
    "clear_pipeline_cache",
    "shared_pipeline",
]

DEFAULT_MAX_BATCH = 8
DEFAULT_BATCH_WAIT_S = 0.005
DEFAULT_MAX_NEW_TOKENS = 256


class LocalChatHuggingFace(ChatHuggingFace):
    """``ChatHuggingFace`` over a local pipeline, with async support, counted usage and
    micro-batched generation through :attr:`batcher`.

    ``tokenizer`` renders chat prompts and counts tokens on the callers' threads; it should
    not be the pipeline's own tokenizer, which the batcher's worker uses with padding on.
    Without a ``batcher`` the model gets one of its own (default settings).
    """

    pool_name: str | None = None
    batcher: PipelineBatcher | None = Field(default=None, exclude=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.batcher is None:
            prepare_tokenizer(self.llm.pipeline.tokenizer)
            self.batcher = PipelineBatcher(self.llm.pipeline, max_batch=DEFAULT_MAX_BATCH,
                                           wait_s=DEFAULT_BATCH_WAIT_S)

    @property
    def _batcher(self) -> PipelineBatcher:
        assert self.batcher is not None
        return self.batcher

    def _count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _message(self, prompt: str, text: str) -> tuple[str, UsageMetadata, dict[str, Any]]:
        prompt_tokens, out = self._count(prompt), self._count(text)
        usage: UsageMetadata = {"input_tokens": prompt_tokens, "output_tokens": out,
                                "total_tokens": prompt_tokens + out}
        return text, usage, {"model_name": self.pool_name or self.model_id}

    def _result(self, prompt: str, text: str) -> ChatResult:
        text, usage, meta = self._message(prompt, text)
        msg = AIMessage(content=text, usage_metadata=usage, response_metadata=meta)
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _chunk(self, prompt: str, text: str) -> ChatGenerationChunk:
        text, usage, meta = self._message(prompt, text)
        return ChatGenerationChunk(message=AIMessageChunk(content=text, usage_metadata=usage,
                                                          response_metadata=meta))

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, stream: bool | None = None,
                  **kwargs: Any) -> ChatResult:
        # ``stop`` is ignored, as by HuggingFacePipeline itself.
        prompt = self._to_chat_prompt(messages)
        text = self._batcher.generate(prompt, **kwargs.get("pipeline_kwargs", {}))
        return self._result(prompt, text)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, stream: bool | None = None,
                         **kwargs: Any) -> ChatResult:
        prompt = self._to_chat_prompt(messages)
        text = await self._batcher.agenerate(prompt, **kwargs.get("pipeline_kwargs", {}))
        return self._result(prompt, text)

    def _stream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                run_manager: Any = None, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        """The whole (batched) generation as one chunk: token streaming would bypass the
        batcher, and the stock pipeline path has none."""
        prompt = self._to_chat_prompt(messages)
        text = self._batcher.generate(prompt, **kwargs.get("pipeline_kwargs", {}))
        yield self._chunk(prompt, text)

    async def _astream(self, messages: list[BaseMessage], stop: list[str] | None = None,
                       run_manager: Any = None,
                       **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        prompt = self._to_chat_prompt(messages)
        text = await self._batcher.agenerate(prompt, **kwargs.get("pipeline_kwargs", {}))
        yield self._chunk(prompt, text)


@dataclass(frozen=True)
class SharedPipeline:
    """One loaded model, shared by every pool entry with the same :attr:`key`."""

    key: tuple[Any, ...]
    llm: Any
    """The ``HuggingFacePipeline``."""
    tokenizer: Any
    """A second tokenizer for chat templates and token counts (not the pipeline's own)."""
    batcher: PipelineBatcher


_CACHE: dict[tuple[Any, ...], SharedPipeline] = {}
_LOAD_LOCKS: dict[tuple[Any, ...], threading.Lock] = {}
_CACHE_LOCK = threading.Lock()


def shared_pipeline(model_dir: str | Path, *, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
                    temperature: float | None = None, max_batch: int = DEFAULT_MAX_BATCH,
                    batch_wait_s: float = DEFAULT_BATCH_WAIT_S) -> SharedPipeline:
    """The cached pipeline for these settings, loading it on first use (thread-safe; a model
    is loaded once even when several threads ask for it at the same time)."""
    key = (str(Path(model_dir).resolve()), max_new_tokens, float(temperature or 0.0),
           max_batch, batch_wait_s)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
        load_lock = _LOAD_LOCKS.setdefault(key, threading.Lock())
    with load_lock:
        with _CACHE_LOCK:
            if key in _CACHE:
                return _CACHE[key]
        shared = _load(key)
        with _CACHE_LOCK:
            _CACHE[key] = shared
            _LOAD_LOCKS.pop(key, None)
    return shared


def _load(key: tuple[Any, ...]) -> SharedPipeline:
    from langchain_huggingface import HuggingFacePipeline
    from transformers import AutoTokenizer

    path, max_new_tokens, temperature, max_batch, batch_wait_s = key
    pipeline_kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens,
                                       "return_full_text": False}
    if temperature:
        pipeline_kwargs.update(do_sample=True, temperature=temperature)
    llm = HuggingFacePipeline.from_model_id(
        model_id=path, task="text-generation", pipeline_kwargs=pipeline_kwargs,
        model_kwargs={"local_files_only": True},
    )
    prepare_tokenizer(llm.pipeline.tokenizer)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    tokenizer.encode("warm-up", add_special_tokens=False)  # settle its padding/truncation state
    batcher = PipelineBatcher(llm.pipeline, max_batch=max_batch, wait_s=batch_wait_s)
    return SharedPipeline(key=key, llm=llm, tokenizer=tokenizer, batcher=batcher)


def clear_pipeline_cache(model_dir: str | Path | None = None) -> None:
    """Forget the shared pipelines of one directory, or all of them, and stop their idle
    worker threads (a model stays loaded while a chat model built on it is alive)."""
    path = None if model_dir is None else str(Path(model_dir).resolve())
    with _CACHE_LOCK:
        dropped = [_CACHE.pop(k) for k in list(_CACHE) if path is None or k[0] == path]
    for shared in dropped:
        shared.batcher.stop()


def build(spec: ModelSpec, *, max_batch: int = DEFAULT_MAX_BATCH,
          batch_wait_s: float = DEFAULT_BATCH_WAIT_S) -> LocalChatHuggingFace:
    """A chat model for a ``huggingface`` pool entry, over the shared pipeline of its directory.

    Args:
        spec: The pool entry (``model`` is the local directory).
        max_batch: Most requests per batched pipeline call; 1 turns batching off.
        batch_wait_s: How long a request waits for others to join its batch.
    """
    shared = shared_pipeline(str(spec.model), max_new_tokens=spec.max_tokens or
                             DEFAULT_MAX_NEW_TOKENS, temperature=spec.temperature,
                             max_batch=max_batch, batch_wait_s=batch_wait_s)
    return LocalChatHuggingFace(llm=shared.llm, model_id=str(spec.model),
                                tokenizer=shared.tokenizer, pool_name=spec.name,
                                batcher=shared.batcher)
