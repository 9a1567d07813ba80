"""Which nodes' tokens a streamed reply sends (``colm_graph.spec.reply``), and the token
buffer that scrubs them (``colm_graph.integrations.reply_stream.ReplyTokens``)."""

from __future__ import annotations

import pytest

from colm_graph import ModelPool
from colm_graph.integrations.reply_stream import ReplyTokens
from colm_graph.spec import bundled_graphs, load_spec, parse_spec
from colm_graph.spec.compile import reply_nodes_of
from colm_graph.spec.schema import RoleBinding

SHIPPED = {
    "single": {"answer", "fallback_answer"},
    "route": {"strong", "weak"},
    "cascade": {"escalate"},
    "cope": {"execute3"},
    "moa": {"aggregate"},
    "colm": set(), "colm_vlm": set(), "debate": set(), "self_consistency": set(),
}


def test_every_shipped_graph_is_in_the_table() -> None:
    assert set(SHIPPED) == set(bundled_graphs())


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_reply_nodes(name: str) -> None:
    assert reply_nodes_of(load_spec(name), pool=ModelPool.default()) == SHIPPED[name]


def _spec(nodes: str, edges: str, roles: str = "agent: {tier: local, count: 1}") -> str:
    return f"""\
name: mine
parameters: {{samples: 1}}
roles:
  {roles}
nodes:
{nodes}
  finish: {{kind: finish}}
edges:
{edges}
  - {{from: finish, to: END}}
"""


CHAIN = _spec("  draft: {kind: answer, role: agent}\n"
              "  polish: {kind: answer, role: agent, samples: $samples}\n",
              "  - {from: START, to: draft}\n  - {from: draft, to: polish}\n"
              "  - {from: polish, to: finish}\n")


@pytest.mark.parametrize(("params", "want"), [({}, {"polish"}), ({"samples": 3}, set())])
def test_only_a_last_single_call_writes_the_reply(params: dict[str, int],
                                                  want: set[str]) -> None:
    # draft leads to a model call, so it is never the reply; polish is, unless sampled
    assert reply_nodes_of(parse_spec(CHAIN), params=params) == want


def test_a_node_answered_by_several_models_is_not_a_reply() -> None:
    spec = parse_spec(_spec("  ask: {kind: answer, role: agent}\n",
                            "  - {from: START, to: ask}\n  - {from: ask, to: finish}\n",
                            roles="agent: {tier: local, count: 2}"))
    assert reply_nodes_of(spec) == set()
    assert reply_nodes_of(spec, roles={"agent": RoleBinding(model="sim-arith", count=1)}) == {"ask"}


def test_a_node_on_a_loop_is_not_a_reply() -> None:
    looped = _spec(
        "  ask: {kind: answer, role: agent}\n  tally: {kind: vote}\n",
        "  - {from: START, to: ask}\n  - {from: ask, to: tally}\n"
        "  - from: tally\n    branches:\n      - {when: {agreement_at_least: 1.0}, to: finish}\n"
        "      - {when: {rounds_at_least: 3}, to: finish}\n    default: ask\n")
    assert reply_nodes_of(parse_spec(looped)) == set()


# -- the token buffer -----------------------------------------------------------------------
def test_tokens_of_the_first_call_are_sent_as_they_come() -> None:
    tokens = ReplyTokens()
    tokens.feed("a", "")
    assert not tokens.changed.is_set() and tokens.take() == ""
    tokens.feed("a", "The ans")
    assert tokens.changed.is_set()
    tokens.feed("a", "wer is")
    assert tokens.take() == "The answer is" and not tokens.changed.is_set()
    tokens.feed("b", " something else")  # a second call (a retry, another model)
    assert tokens.restarted and tokens.take() == ""
    assert tokens.rest("The answer is 4.") == (" 4.", False)
    assert tokens.rest("Another reply.") == ("\n\nAnother reply.", True)
    assert tokens.live


SECRET = "sk-live-0123456789abcdef"


@pytest.mark.parametrize("cut", range(1, len(SECRET)))
def test_a_secret_split_across_deltas_is_never_sent(cut: int) -> None:
    tokens = ReplyTokens([SECRET])
    sent = []
    for piece in ["Use the key ", SECRET[:cut], SECRET[cut:], " to call it.\n", "Done"]:
        tokens.feed("a", piece)
        sent.append(tokens.take())
    joined = "".join(sent)
    assert all(SECRET[i:i + 8] not in joined for i in range(len(SECRET) - 7))
    assert joined == "Use the key *** to call it.\n"  # "Done" waits for its whitespace
    assert tokens.rest("Use the key *** to call it.\nDone") == ("Done", False)
