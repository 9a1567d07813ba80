"""The shared node set. Nodes are module-level functions bound to their settings at build
time; each model-calling node has a sync and an async form over the same prepare/finish
steps, so graphs run under ``invoke`` and ``ainvoke`` alike."""

from .aggregate import after_tally, finish, tally
from .clients import adraft, arevise, draft, revise, send_drafts, send_revisions
from .routing import aselect, select
from .server import aguide, guide

__all__ = [
    "adraft", "aguide", "arevise", "aselect", "after_tally", "draft", "finish", "guide",
    "revise", "select", "send_drafts", "send_revisions", "tally",
]
