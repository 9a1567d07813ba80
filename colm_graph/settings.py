"""Limits and literal types shared by the factories and the CLI (kept free of heavy imports)."""

from __future__ import annotations

from typing import Literal

__all__ = ["MAX_ROUNDS", "MAX_TOP_K", "OutputPolicy"]

OutputPolicy = Literal["auto", "home", "majority"]
MAX_TOP_K = 64
MAX_ROUNDS = 20
