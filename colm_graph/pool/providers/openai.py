"""Provider ``openai``: ``ChatOpenAI`` for OpenAI and any OpenAI-compatible endpoint
(vLLM, Ollama, llama.cpp server, ...)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from colm_graph.errors import PoolError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from colm_graph.pool.spec import ModelSpec

__all__ = ["build"]

# Local OpenAI-compatible servers usually accept any key; the client insists on one.
_PLACEHOLDER_KEY = "not-needed"


def _reasoning_model() -> type[BaseChatModel]:
    """``ChatOpenAI`` that keeps the ``reasoning_content`` (or ``reasoning``) field that
    vLLM, DeepSeek and Ollama return beside the content, which ``ChatOpenAI`` drops, in
    ``additional_kwargs["reasoning_content"]`` (streamed deltas too, joined as the chunks
    are added): it goes to the trace, never to extraction."""
    global _REASONING_MODEL
    if _REASONING_MODEL is not None:
        return _REASONING_MODEL
    from langchain_openai import ChatOpenAI

    class ReasoningChatOpenAI(ChatOpenAI):
        def _create_chat_result(self, response: Any, generation_info: dict | None = None
                                ) -> Any:
            result = super()._create_chat_result(response, generation_info)
            choices = (response.get("choices") if isinstance(response, dict)
                       else getattr(response, "choices", None)) or []
            for gen, choice in zip(result.generations, choices, strict=False):
                message = (choice.get("message") if isinstance(choice, dict)
                           else getattr(choice, "message", None))
                reasoning = _field(message, "reasoning_content") or _field(message, "reasoning")
                if isinstance(reasoning, str) and reasoning:
                    gen.message.additional_kwargs["reasoning_content"] = reasoning
            return result

        def _convert_chunk_to_generation_chunk(self, chunk: dict, default_chunk_class: type,
                                               base_generation_info: dict | None) -> Any:
            gen = super()._convert_chunk_to_generation_chunk(chunk, default_chunk_class,
                                                             base_generation_info)
            choices = chunk.get("choices") or (chunk.get("chunk") or {}).get("choices") or []
            delta = choices[0].get("delta") if choices and isinstance(choices[0], dict) \
                else None
            if gen is not None and isinstance(delta, dict):
                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                if isinstance(reasoning, str) and reasoning:
                    gen.message.additional_kwargs["reasoning_content"] = reasoning
            return gen

    _REASONING_MODEL = ReasoningChatOpenAI
    return ReasoningChatOpenAI


_REASONING_MODEL: type[BaseChatModel] | None = None


def _field(message: Any, name: str) -> Any:
    """A field of a response message, dict or SDK object (extra fields included)."""
    if message is None:
        return None
    if isinstance(message, dict):
        return message.get(name)
    extra = getattr(message, "model_extra", None) or {}
    return extra.get(name, getattr(message, name, None) if name != "reasoning" else None)


def build(spec: ModelSpec) -> BaseChatModel:
    from pydantic import SecretStr

    env = spec.key_env()
    key = os.environ.get(env or "")
    if not key:
        if spec.api_key_env is not None or spec.tier == "paid":
            raise PoolError(f"model {spec.name!r}: environment variable {env} is not set")
        key = _PLACEHOLDER_KEY
    kwargs: dict[str, Any] = {
        "model": spec.model,
        "api_key": SecretStr(key),
        "stream_usage": True,
        "max_retries": 2,
    }
    if spec.base_url:
        kwargs["base_url"] = spec.base_url
    if spec.temperature is not None:
        kwargs["temperature"] = spec.temperature
    if spec.max_tokens is not None:
        kwargs["max_tokens"] = spec.max_tokens
    if spec.timeout_s is not None:
        kwargs["timeout"] = spec.timeout_s
    from colm_graph.pool.wire import count_bytes

    return count_bytes(_reasoning_model()(**kwargs))
