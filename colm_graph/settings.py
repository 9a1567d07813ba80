"""Settings a protocol graph is built with (bound to its nodes at build time)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .pool import ModelPool
from .prompts import PromptSet
from .selection import Selector

__all__ = ["MAX_ROUNDS", "MAX_TOP_K", "ColmSettings", "OutputPolicy"]

OutputPolicy = Literal["auto", "home", "majority"]
MAX_TOP_K = 64
MAX_ROUNDS = 20


@dataclass(frozen=True, eq=False)
class ColmSettings:
    """How a CoLM graph runs."""

    pool: ModelPool
    candidates: tuple[str, ...]
    """Clients the selector may choose from."""
    server: str
    """Pool name of the server model."""
    selector: Selector
    prompts: PromptSet
    top_k: int = 2
    rounds: int = 2
    """Guidance rounds at most (0: drafts only)."""
    skip_guidance_when_agreed: bool = True
    """No server call when every draft already gives the same answer."""
    output: OutputPolicy = "auto"
    """``home``: the home client's answer; ``majority``: the majority of final answers;
    ``auto``: home when the caller names one, else majority."""
    home: str | None = None
    """Default home client when the input names none."""
