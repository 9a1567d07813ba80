"""The values each node kind declares for its prompt (``NodeKind.prompt_values``, what
``spec/validate.py`` checks a spec's ``prompt`` against) are the values its node passes when
it formats the prompt: every shipped variant is run on the simulated pool, with each
``messages`` call of the real prompt set recorded."""

from __future__ import annotations

from typing import Any

import pytest

from colm_graph import ModelPool, load_graph
from colm_graph.core import prompts
from colm_graph.nodes import KINDS

# the default prompt of each kind (and the options that decide a revise node's values)
KIND_OF = {"client_draft": ("answer", {}), "client_revise": ("revise", {"context": "guidance"}),
           "peer_revise": ("revise", {"context": "peers"}), "planner": ("plan", {}),
           "executor": ("execute", {}), "server_guide": ("guide", {}),
           "aggregator": ("aggregate", {}), "verifier": ("verify", {}),
           "difficulty": ("score", {}), "select_clients": ("select", {})}

RUNS: list[tuple[str, dict[str, Any]]] = [
    ("colm", {"selector": "llm", "skip_guidance_when_agreed": False}), ("cope", {}),
    ("moa", {}), ("debate", {}), ("route", {"scorer": "llm"}),
    ("cascade", {"verifier": "self_check", "threshold": 1.0}), ("self_consistency", {}),
    ("single", {}),
]


@pytest.fixture(scope="module")
def passed() -> dict[str, set[frozenset[str]]]:
    seen: dict[str, set[frozenset[str]]] = {}
    real = prompts.PromptSet.messages
    mp = pytest.MonkeyPatch()

    def recording(self: Any, name: str, **values: object) -> Any:
        seen.setdefault(name, set()).add(frozenset(values))
        return real(self, name, **values)

    mp.setattr(prompts.PromptSet, "messages", recording)
    try:
        for graph, params in RUNS:
            load_graph(graph, pool=ModelPool.default(), params=params).invoke(
                {"question": "Compute 32 times 15, plus 60."})
    finally:
        mp.undo()
    return seen


@pytest.mark.parametrize("prompt", sorted(KIND_OF))
def test_declared_values_are_the_values_passed(prompt: str,
                                               passed: dict[str, set[frozenset[str]]]) -> None:
    kind, options = KIND_OF[prompt]
    assert prompt in passed, f"no shipped variant formatted {prompt!r}"
    declared = KINDS[kind].values_for(options)
    for keys in passed[prompt]:
        assert keys == declared, (prompt, sorted(keys ^ declared))


def test_every_model_kind_declares_its_values() -> None:
    for name, kind in KINDS.items():
        assert bool(kind.values_for({})) is kind.calls_model, name


def test_prompts_format_as_their_templates_do() -> None:
    """PromptSet.messages formats plain prompts with str.format (no per-call validation):
    the messages are those ChatPromptTemplate.format_messages gives, braces and all."""
    from colm_graph.core.prompts import DEFAULTS, PLACEHOLDERS, PREFENCED, fence, load_prompts

    prompts = load_prompts(None)
    assert prompts.templates
    for name, template in prompts.templates.items():
        values = {k: f"<{k}: {{not a placeholder}} {{{{x}}}}>" for k in PLACEHOLDERS[name]}
        given = {**{k: v for k, v in DEFAULTS.items() if k in PLACEHOLDERS[name]}, **values}
        safe = {k: fence(v) if k not in PREFENCED else v for k, v in given.items()}
        want = template.format_messages(**safe)
        got = prompts.messages(name, **values)
        assert [(type(m), m.content) for m in got] == [(type(m), m.content) for m in want]
