"""Pool entries as written in a pool file: :class:`ModelSpec` with its :class:`Price` and
:class:`SimSettings`, validated with pydantic. Providers read these; nothing here builds a model."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

__all__ = ["ANSWER_FORMATS", "ENV_NAME_RE", "NAME_RE", "SYSTEM_PROMPT_MODES", "AnswerFormat",
           "ModelSpec", "Price", "SimSettings", "SystemPrompt"]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SystemPrompt = Literal["separate", "fold"]
SYSTEM_PROMPT_MODES: tuple[str, ...] = ("separate", "fold")
AnswerFormat = Literal["text", "json"]
ANSWER_FORMATS: tuple[str, ...] = ("text", "json")


def _no_bool(value: Any) -> Any:
    """``true`` is not a number (pydantic would read it as 1)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a number, got {str(value).lower()}")
    return value


Number = Annotated[float, BeforeValidator(_no_bool), Field(allow_inf_nan=False)]
"""A finite number that is not a boolean."""
Whole = Annotated[int, BeforeValidator(_no_bool)]
"""An integer that is not a boolean."""


class Price(BaseModel):
    """USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    input: Number = Field(0.0, ge=0)
    output: Number = Field(0.0, ge=0)


class SimSettings(BaseModel):
    """Behaviour of a built-in simulated model (provider ``sim``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    skills: dict[str, Number] = Field(default_factory=dict)
    """Probability of a correct answer, per domain."""
    default_skill: Number = Field(0.5, ge=0, le=1)
    """Probability of a correct answer in domains not listed in ``skills``."""
    adoption: Number = Field(0.7, ge=0, le=1)
    """Probability of adopting a different answer that guidance or a plan supports."""
    latency_s: Number = Field(0.0, ge=0, le=60)
    extra_output_tokens: Whole = Field(120, ge=0, le=100_000)
    """Simulated length of the reasoning that precedes the answer, in tokens."""
    seed: Whole = 0
    reachable: bool = True
    """False simulates a paid endpoint that cannot be reached."""
    style: str = "terse"
    """How replies state their answer: ``terse`` (``Answer: 439``), ``markdown``, ``latex``,
    ``gsm8k``, ``think``, ``verbose``, ``formatted``, or ``mixed`` (one per call); see
    :mod:`colm_graph.pool.providers.sim.styles`."""
    tool_slip: Number | None = Field(None, ge=0, le=1)
    """Probability that a tool call (or a structured reply) leaves out a required field, as
    small models do; by default half of one minus the model's best skill."""
    score_style: str = "plain"
    """How a verifier's confidence and a router's difficulty are written: ``plain``
    (``Confidence: 0.9``), ``percent`` (``90%``), ``bold`` (``**Confidence:** 0.9``),
    ``fraction`` (``9/10``), ``word`` (``high``), ``bare`` (the number alone), or ``mixed``."""

    @field_validator("style", "score_style")
    @classmethod
    def _known_style(cls, v: str, info: Any) -> str:
        from colm_graph.pool.providers.sim.styles import check_setting

        return check_setting(info.field_name, v)

    @field_validator("skills")
    @classmethod
    def _skills_in_range(cls, v: dict[str, float]) -> dict[str, float]:
        for domain, p in v.items():
            if not 0 <= p <= 1:
                raise ValueError(f"skill for {domain!r} must be between 0 and 1, got {p}")
        return v


class ModelSpec(BaseModel):
    """One entry of a pool file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    provider: Literal["openai", "huggingface", "sim"]
    model: str | None = None
    """Model id at the endpoint, or a local directory for ``huggingface``."""
    base_url: str | None = None
    api_key_env: str | None = None
    """Name of the environment variable that holds the API key (never the key itself)."""
    tier: Literal["local", "paid"]
    price: Price = Field(default_factory=lambda: Price())
    domains: list[str] = Field(default_factory=list)
    description: str = ""
    max_tokens: Whole | None = Field(None, ge=1, le=1_000_000)
    temperature: Number | None = Field(None, ge=0, le=2)
    timeout_s: Number | None = Field(None, gt=0, le=3600)
    answer_format: AnswerFormat = "text"
    """``json``: answer, verify and score nodes ask this model for a JSON-schema reply
    (``response_format``; ``{"reasoning", "answer"}``, ``{"reasoning", "confidence"}``,
    ``{"difficulty"}``), read as text when the reply does not validate."""
    system_prompt: SystemPrompt = "separate"
    """``separate``: the system part of a prompt is sent as a system message; ``fold``: it is
    put in front of the user turn (for chat templates without a system role)."""
    expected_latency_s: Number | None = Field(None, gt=0, le=3600)
    """Seconds a call usually takes: the seed of the running estimate a deadline is checked
    against (:mod:`colm_graph.run.latency`); unset: learned from the first calls."""
    residency: Literal["local", "cloud"] | None = None
    """Whether this model may receive a private run's data (``local``) or not (``cloud``);
    unset: local-tier models in process or at a loopback or private address may, paid ones
    may not (:func:`colm_graph.run.constraints.may_hold_private`)."""
    sim: SimSettings | None = None

    @field_validator("name")
    @classmethod
    def _valid_name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(
                f"name must be 1-64 letters, digits, '.', '_' or '-' (starting with a letter or"
                f" digit), got {v!r}"
            )
        return v

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and not ENV_NAME_RE.match(v):
            raise ValueError("api_key_env must be the NAME of an environment variable"
                             " (letters, digits, '_'), not a key")
        return v

    @model_validator(mode="after")
    def _provider_fields(self) -> ModelSpec:
        if self.provider in ("openai", "huggingface") and not self.model:
            raise ValueError(f"provider {self.provider!r} needs field 'model'")
        if self.base_url is not None and self.provider != "openai":
            raise ValueError("field 'base_url' applies only to provider 'openai'")
        if self.base_url is not None and not re.match(r"^https?://[^\s/]+", self.base_url):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if self.api_key_env is not None and self.provider != "openai":
            raise ValueError("field 'api_key_env' applies only to provider 'openai'")
        if self.sim is not None and self.provider != "sim":
            raise ValueError("field 'sim' applies only to provider 'sim'")
        return self

    def key_env(self) -> str | None:
        """Environment variable holding this model's API key (openai provider only).

        A key goes only where its entry names it: ``api_key_env``, else ``OPENAI_API_KEY``
        for OpenAI's own endpoint (no ``base_url``). An entry with a ``base_url`` and no
        ``api_key_env`` sends a fixed placeholder, never a variable it was not given (a LAN
        vLLM or Ollama host must not receive your OpenAI key)."""
        if self.provider != "openai":
            return None
        if self.api_key_env is not None:
            return self.api_key_env
        return "OPENAI_API_KEY" if self.base_url is None else None
