"""Drafts trimmed to fit a run's upload cap (``colm_graph/nodes/server.py``): the order
the module documents, over the real ``server_guide`` prompt. (The same over HTTP, as the
paid fake receives it: ``tests/integration/test_wire_bytes.py``.)"""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import BaseMessage

from colm_graph.core.answers import extract_answer
from colm_graph.core.prompts import data_block, load_prompts
from colm_graph.nodes.server import fit_upload, shortened
from colm_graph.run.calls import request_size

PROMPTS = load_prompts()
OMITTED = re.compile(r"\n\[\.\.\. (\d+) characters omitted \.\.\.\]\n")


def draft(client: str, answer: str | None, working: int, *, after: str = "") -> dict[str, Any]:
    steps = "".join(f"Step {i}: carry the {i % 10} and add.\n" for i in range(working))
    last = f"Answer: {answer}" if answer is not None else "I could not finish this one."
    return {"client": client, "model": client, "role": "client", "node": "draft", "round": 0,
            "stage": 0, "sample": 0, "text": f"{steps}{last}{after}", "answer": answer}


def build(drafts: list[Any]) -> list[BaseMessage]:
    return PROMPTS.messages("server_guide", question="What is 17 * 23 + 48?", round=1,
                            rounds=2, previous_guidance="", answers_so_far="(none)",
                            drafts="\n".join(data_block("draft", d["text"], client=d["client"])
                                             for d in drafts))


def size(drafts: list[Any]) -> int:
    return request_size(build(drafts))


def texts(drafts: list[Any]) -> dict[str, str]:
    return {d["client"]: d["text"] for d in drafts}


# -- shortened: one draft --------------------------------------------------------------------
def accounted(original: str, cut: str) -> bool:
    """Every character of ``original`` is either kept in ``cut`` or counted by a marker."""
    kept = OMITTED.sub("", cut)
    omitted = sum(int(n) for n in OMITTED.findall(cut))
    return len(kept) + omitted == len(original)


def test_a_cut_draft_keeps_its_head_and_its_answer_line_and_counts_the_rest():
    text = draft("a", "439", 80)["text"]
    line = text.rindex("Answer: 439")
    cut = shortened(text, 300, (line, len(text)))
    assert len(cut) <= 300 and cut.startswith("Step 0:") and cut.endswith("Answer: 439")
    assert accounted(text, cut)


def test_what_follows_the_answer_line_is_kept_while_it_fits_then_cut():
    text = draft("a", "439", 80, after="\nHope this helps.")["text"]
    start = text.rindex("Answer: 439")
    piece = (start, start + len("Answer: 439"))
    roomy = shortened(text, 400, piece)
    assert roomy.endswith("Answer: 439\nHope this helps.") and accounted(text, roomy)
    tight = shortened(text, 30, piece)  # below the answer line and its markers
    assert "Answer: 439" in tight and "Hope this helps" not in tight
    assert accounted(text, tight) and len(tight) < len(text)


def test_a_draft_is_never_made_longer_and_short_ones_are_left_alone():
    short = "Short.\nAnswer: 7"
    assert shortened(short, 5, (7, len(short))) == short  # a marker would outweigh the cut
    assert shortened(short, len(short), (7, len(short))) == short


# -- fit_upload: the order -------------------------------------------------------------------
def test_drafts_that_fit_are_sent_as_they_are():
    drafts = [draft("a", "439", 20), draft("b", "441", 20)]
    out, note = fit_upload(drafts, build, size(drafts))
    assert out == drafts and note is None


def test_the_longest_drafts_are_cut_first_to_one_common_length():
    drafts = [draft("long", "439", 200), draft("mid", "441", 60), draft("short", "439", 3)]
    cap = size(drafts) - 5000
    out, note = fit_upload(drafts, build, cap)
    assert size(out) <= cap
    after = texts(out)
    assert after["short"] == drafts[2]["text"]  # shorter than the common length: untouched
    assert len(after["long"]) < len(drafts[0]["text"])
    assert abs(len(after["long"]) - len(after["mid"])) <= 2  # the same length (marker digits)
    assert note is not None and "drafts of long, mid cut to" in note and "short" not in note
    assert f"{cap} left" in note


def test_every_answer_survives_the_cut():
    drafts = [draft("a", "439", 150), draft("b", "441", 150), draft("c", None, 150)]
    floor = size(drafts) // 4
    out, _ = fit_upload(drafts, build, floor)
    assert size(out) <= floor
    for before, after in zip(drafts, out, strict=True):
        assert extract_answer(after["text"]) == extract_answer(before["text"])
    assert texts(out)["c"].endswith("I could not finish this one.")  # its last line


def smallest_cap(drafts: list[Any], low: int, high: int, kept_at_least: int) -> int:
    """The smallest cap in (low, high] at which the drafts are trimmed to fit keeping at
    least ``kept_at_least`` of them (feasibility only grows with the cap)."""
    def ok(cap: int) -> bool:
        out, note = fit_upload(drafts, build, cap)
        return note is not None and len(out) >= kept_at_least

    assert ok(high) and not ok(low)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if ok(mid) else (mid, high)
    return high


def test_repeated_answers_go_last_participant_first_when_cutting_is_not_enough():
    drafts = [draft("a", "439", 100), draft("b", "441", 100), draft("c", "439", 100),
              draft("d", "441", 100), draft("e", "439", 100)]
    full = size(drafts)
    # the least that can be sent: one draft per answer, each at its answer line
    least = smallest_cap(drafts, 0, full - 1, 1)
    out, note = fit_upload(drafts, build, least)
    assert [d["client"] for d in out] == ["a", "b"]
    assert note is not None and "drafts of c, d, e left out" in note
    assert fit_upload(drafts, build, least - 1) == (drafts, None)  # step 3: left whole
    # a little more room: e goes first, then d (the later participants first)
    three = smallest_cap(drafts, least, full - 1, 3)
    out, note = fit_upload(drafts, build, three)
    assert [d["client"] for d in out] == ["a", "b", "c"]
    assert note is not None and "drafts of d, e left out" in note and size(out) <= three
    four = smallest_cap(drafts, three, full - 1, 4)
    assert [d["client"] for d in fit_upload(drafts, build, four)[0]] == ["a", "b", "c", "d"]


def test_a_cap_nothing_can_meet_leaves_the_drafts_whole_for_the_fallback():
    drafts = [draft("a", "439", 100), draft("b", "441", 100)]  # no repeat to drop
    out, note = fit_upload(drafts, build, 500)
    assert out == drafts and note is None


def test_the_same_drafts_and_cap_trim_the_same_way():
    drafts = [draft("a", "439", 120), draft("b", "441", 90), draft("c", "439", 30)]
    cap = size(drafts) // 2
    assert fit_upload(drafts, build, cap) == fit_upload(list(drafts), build, cap)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(lengths=st.lists(st.integers(0, 120), min_size=1, max_size=4),
       answers=st.lists(st.sampled_from(["439", "441", None]), min_size=4, max_size=4),
       share=st.floats(0.05, 1.2))
def test_trimmed_drafts_fit_or_are_left_whole(lengths, answers, share):
    drafts = [draft(f"p{i}", answers[i], n) for i, n in enumerate(lengths)]
    cap = int(size(drafts) * share)
    out, note = fit_upload(drafts, build, cap)
    if note is None:
        assert out == drafts  # it fitted, or it cannot: the call falls back
    else:
        assert size(out) <= cap < size(drafts)
        kept = {d["client"] for d in out}
        originals = {d["client"]: d for d in drafts}
        for d in out:  # in order, answers intact
            assert extract_answer(d["text"]) == extract_answer(originals[d["client"]]["text"])
        assert [d["client"] for d in drafts if d["client"] in kept] == \
            [d["client"] for d in out]
        seen = {originals[c]["answer"] for c in kept}
        assert seen == {d["answer"] for d in drafts}  # no answer is lost
