"""Provider ``huggingface``: a local model directory served by ``HuggingFacePipeline`` and
wrapped in ``ChatHuggingFace``.

Two things the stock wrapper does not do for a pipeline backend, and this one does:
async calls (run the sync generation in a worker thread) and token usage (counted with the
model's own tokenizer, since the pipeline reports none). Only local directories are loaded
(``local_files_only``): nothing is fetched from a hub.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_huggingface import ChatHuggingFace
from pydantic import PrivateAttr

if TYPE_CHECKING:
    from ..pool import ModelSpec

__all__ = ["LocalChatHuggingFace", "build"]


class LocalChatHuggingFace(ChatHuggingFace):
    """``ChatHuggingFace`` over a local pipeline, with async support and counted usage."""

    pool_name: str | None = None
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def _count(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def _with_usage(self, messages: list[BaseMessage], result: ChatResult) -> ChatResult:
        prompt_tokens = self._count(self._to_chat_prompt(messages))
        for gen in result.generations:
            msg = gen.message
            if isinstance(msg, AIMessage):
                out = self._count(msg.text)
                msg.usage_metadata = {"input_tokens": prompt_tokens, "output_tokens": out,
                                      "total_tokens": prompt_tokens + out}
                msg.response_metadata.setdefault("model_name", self.pool_name or self.model_id)
        return result

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, stream: bool | None = None,
                  **kwargs: Any) -> ChatResult:
        # One generation at a time per pipeline: HF pipelines are not documented as
        # thread-safe, and on a CPU torch already uses every core for one call.
        with self._lock:
            result = super()._generate(messages, stop=stop, run_manager=run_manager,
                                       stream=stream, **kwargs)
        return self._with_usage(messages, result)

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: Any = None, stream: bool | None = None,
                         **kwargs: Any) -> ChatResult:
        sync_manager = run_manager.get_sync() if run_manager is not None else None
        return await asyncio.to_thread(self._generate, messages, stop, sync_manager, stream,
                                       **kwargs)


def build(spec: ModelSpec) -> LocalChatHuggingFace:
    from langchain_huggingface import HuggingFacePipeline

    pipeline_kwargs: dict[str, Any] = {"max_new_tokens": spec.max_tokens or 256,
                                       "return_full_text": False}
    if spec.temperature:
        pipeline_kwargs.update(do_sample=True, temperature=spec.temperature)
    llm = HuggingFacePipeline.from_model_id(
        model_id=str(spec.model), task="text-generation", pipeline_kwargs=pipeline_kwargs,
        model_kwargs={"local_files_only": True},
    )
    return LocalChatHuggingFace(llm=llm, model_id=str(spec.model), pool_name=spec.name)
