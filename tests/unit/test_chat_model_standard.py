"""LangChain's standard chat-model test suites, run on CollaborativeChatModel over the
built-in simulated pool (offline, deterministic).

The suites check message shape, usage metadata, streaming, batching and conversation
handling, not correctness: the simulator answers open prompts such as "Hello" with
"Answer: cannot answer", which is a non-empty reply with usage like any other.

Features switched off below, through the suites' own switches:

* tool calling and structured output (``has_tool_calling``, ``has_tool_choice``,
  ``has_structured_output``; JSON mode is off by default): the model here runs ``colm``,
  whose reply is a revision written from k clients' drafts and the server's guidance, not
  one model's message, so it refuses ``bind_tools`` with one line (see
  :func:`colm_graph.spec.reply.tools_refused`; ``protocol_tool`` is the way to use CoLM
  in an agent). The suites run with these switched on for route- and cascade-based models
  against tool-calling fakes over HTTP in ``tests/integration/test_agent_tools.py``.
* multimodal inputs (images, PDFs, audio, video) keep the suite's default ``False``: image
  blocks do reach vision-language clients (the ``colm_vlm`` variant), but the simulated pool
  cannot look at an image, and the suite's image tests download their inputs, which these
  offline tests cannot do.
* model override: the suite's ``test_*_with_model_override`` compare the per-call ``model``
  with ``response_metadata["model_name"]``; ``model="single"`` runs the ``single`` variant
  and replies as ``colm-graph/single``, so the override is tested, with ``single``.
"""

from __future__ import annotations

from typing import Any

from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from colm_graph.integrations.chat_model import CollaborativeChatModel


class _Setup:
    @property
    def chat_model_class(self) -> type[CollaborativeChatModel]:
        return CollaborativeChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"graph": "colm"}

    @property
    def has_tool_calling(self) -> bool:
        # CoLM's reply is a revision of several models' drafts: bind_tools refuses.
        return False

    @property
    def has_tool_choice(self) -> bool:
        # No tool calling (see has_tool_calling).
        return False

    @property
    def has_structured_output(self) -> bool:
        # with_structured_output refuses too, for the same reason.
        return False

    @property
    def model_override_value(self) -> str:
        # model= picks another variant; the reply's model_name is colm-graph/<variant>.
        return "single"


class TestCollaborativeChatModelUnit(_Setup, ChatModelUnitTests):
    """Standard unit tests (``api_key`` and the other generic parameters are accepted)."""


class TestCollaborativeChatModelIntegration(_Setup, ChatModelIntegrationTests):
    """Standard integration tests against the built-in simulated pool."""
