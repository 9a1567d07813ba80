"""Provider ``openai``: ``ChatOpenAI`` for OpenAI and any OpenAI-compatible endpoint
(vLLM, Ollama, llama.cpp server, ...)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import PoolError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

    from ..pool import ModelSpec

# Local OpenAI-compatible servers usually accept any key; the client insists on one.
_PLACEHOLDER_KEY = "not-needed"


def build(spec: ModelSpec) -> BaseChatModel:
    from langchain_openai import ChatOpenAI
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
    return ChatOpenAI(**kwargs)
