"""The ``route`` variant and its scorers: heuristic, custom and LLM scorers deciding which
tier answers, threshold calibration, labelled files and the embedding kNN scorer."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from colm_graph import (
    ColmGraphError,
    ConfigError,
    EmbeddingKNNScorer,
    HeuristicScorer,
    ModelPool,
    calibrate_threshold,
    create_route_graph,
    ledger_totals,
    load_labelled,
)
from colm_graph.pool.providers.sim.tasks import bundled_tasks
from tests.support.fakes import BagOfWordsEmbeddings, ScriptedChatModel

QUESTIONS = [
    "What is 2 + 2?",
    "Name the capital of France.",
    "Prove that there are infinitely many primes.",
    "A train travels 60 km per hour for 2 hours, then 40 km per hour for 3 hours."
    " What total distance does it cover?",
    "What is the probability of rolling two sixes with two dice, then a third six after that?",
    "Spell cat.",
    "Find the remainder when 2 to the 100 is divided by 7.",
    "Compute the integral of x squared from 0 to 3 and explain why the result is positive.",
    "Is 17 prime?",
    "Each box holds 12 eggs and costs 3 dollars. What is the total cost per egg for 5 boxes"
    " after a 10 percent discount?",
    "Hello there, how are you today?",
    "Solve the system of simultaneous equations x + y = 10 and x - y = 2.",
]


def make_pool(router: ScriptedChatModel | None = None
              ) -> tuple[ModelPool, dict[str, ScriptedChatModel]]:
    models = {"small": ScriptedChatModel(reply="Local work.\nAnswer: 1"),
              "big": ScriptedChatModel(reply="Paid work.\nAnswer: 2")}
    pool = ModelPool()
    if router is not None:
        models["rater"] = router
        pool.add("rater", router, tier="local")
    pool.add("small", models["small"], tier="local")
    pool.add("big", models["big"], tier="paid", price={"input": 3.0, "output": 15.0})
    return pool, models


def answered_by(out: dict) -> str:
    """The model of the answering call (the strong or weak node) of a route run."""
    (model,) = [r["model"] for r in out["ledger"] if r["node"] in ("strong", "weak")]
    return model


# -- heuristic scorer ------------------------------------------------------------------------
def test_heuristic_scorer_routes_exactly_the_questions_above_threshold():
    scorer = HeuristicScorer()
    scores = {q: scorer.score(q) for q in QUESTIONS}
    threshold = 0.5
    expected_paid = {q for q, s in scores.items() if s > threshold}
    # the list has to exercise both sides of the threshold for this test to mean anything
    assert 3 <= len(expected_paid) <= len(QUESTIONS) - 3
    pool, models = make_pool()
    graph = create_route_graph(pool=pool, threshold=threshold)
    routed_paid = set()
    for q in QUESTIONS:
        out = graph.invoke({"question": q})
        assert out["scores"]["score"] == scores[q]
        if answered_by(out) == "big":
            routed_paid.add(q)
            assert out["answer"] == "2"
        else:
            assert answered_by(out) == "small" and out["answer"] == "1"
        # the heuristic scorer makes no model call: one call per query
        assert len(out["ledger"]) == 1 and not out["degraded"]
    assert routed_paid == expected_paid
    assert len(models["big"].calls) == len(expected_paid)
    assert len(models["small"].calls) == len(QUESTIONS) - len(expected_paid)


def test_threshold_changes_the_paid_share():
    pool, models = make_pool()
    shares = []
    for threshold in (0.0, 0.5, 1.0):
        graph = create_route_graph(pool=pool, threshold=threshold)
        paid = sum(answered_by(graph.invoke({"question": q})) == "big" for q in QUESTIONS)
        shares.append(paid)
    # every question scores above 0; no score exceeds 1
    assert shares[0] == len(QUESTIONS) and shares[2] == 0
    assert 0 < shares[1] < len(QUESTIONS)


# -- custom scorer --------------------------------------------------------------------------
class TableScorer:
    """A custom Scorer: a fixed score per question, remembering what it was asked."""

    name = "table"

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.seen: list[str] = []

    def score(self, question, ask=None):
        self.seen.append(question)
        return self.table[question]


def test_custom_scorer_object_decides_the_route_and_threshold_is_strict():
    scorer = TableScorer({"easy": 0.1, "hard": 0.9, "edge": 0.5, "just above": 0.5001})
    pool, models = make_pool()
    graph = create_route_graph(pool=pool, threshold=0.5, scorer=scorer)
    routes = {q: answered_by(graph.invoke({"question": q})) for q in scorer.table}
    assert routes == {"easy": "small", "hard": "big", "edge": "small", "just above": "big"}
    assert scorer.seen == list(scorer.table)


def test_custom_scorer_can_ask_the_router_model_and_the_call_is_recorded():
    class AskingScorer:
        name = "asking"

        def score(self, question, ask=None):
            assert ask is not None
            reply = ask("difficulty", {"question": question})
            return 0.9 if "hard" in reply else 0.1

    router = ScriptedChatModel(script=lambda p: "hard" if "integral" in p else "easy")
    pool, models = make_pool(router)
    graph = create_route_graph(pool=pool, router="rater", weak="small", strong="big",
                               scorer=AskingScorer())
    out = graph.invoke({"question": "An integral, please."})
    assert answered_by(out) == "big"
    assert [(r["node"], r["role"], r["model"]) for r in out["ledger"]] == [
        ("score", "router", "rater"), ("strong", "strong", "big")]
    out = graph.invoke({"question": "A sum, please."})
    assert answered_by(out) == "small"


# -- LLM difficulty scorer --------------------------------------------------------------------
@pytest.mark.parametrize(("reply", "score", "tier_model"), [
    ("Difficulty: 8", 0.8, "big"),
    ("I think... Difficulty: 2", 0.2, "small"),
    ("no idea", 1.0, "big"),  # an unparsable rating sends the query to the paid tier
])
def test_llm_scorer_reads_the_router_models_rating(reply, score, tier_model):
    rater = ScriptedChatModel(reply=reply)
    pool, models = make_pool(rater)
    graph = create_route_graph(pool=pool, router="rater", weak="small", strong="big",
                               scorer="llm", threshold=0.5)
    out = graph.invoke({"question": "How many legs do 3 spiders have?"})
    assert out["scores"]["score"] == pytest.approx(score)
    assert answered_by(out) == tier_model
    (prompt,) = rater.prompts
    assert "how hard" in prompt and "<question>\nHow many legs do 3 spiders have?\n</question>" \
        in prompt
    first = out["ledger"][0]
    assert (first["node"], first["role"], first["model"], first["tier"]) == \
        ("score", "router", "rater", "local")


# -- calibration --------------------------------------------------------------------------
distinct_scores = st.lists(st.floats(min_value=0.0, max_value=1.0, allow_nan=False),
                           min_size=1, max_size=80, unique=True)


@settings(max_examples=300, deadline=None, database=None)
@given(scores=distinct_scores, target=st.floats(min_value=0.0, max_value=1.0))
def test_calibrate_threshold_hits_the_target_share(scores, target):
    cal = calibrate_threshold(scores, target)
    n = len(scores)
    routed = sum(s > cal.threshold for s in scores) / n
    assert cal.n == n and cal.target_share == target
    # the share the returned threshold actually routes is the reported one ...
    assert routed == cal.achieved_share
    # ... and within one query of the target
    assert abs(routed - target) <= 1 / n + 1e-12


def test_calibration_extremes_ties_and_errors():
    values = [0.1, 0.2, 0.3, 0.4]
    assert calibrate_threshold(values, 0.0).achieved_share == 0.0
    assert calibrate_threshold(values, 1.0).achieved_share == 1.0
    assert calibrate_threshold(values, 0.5).achieved_share == 0.5
    # ties cannot be split: the achieved share says how far off the target it landed
    tied = calibrate_threshold([0.2] * 5 + [0.8] * 5, 0.3)
    assert tied.achieved_share in (0.0, 0.5)
    assert tied.achieved_share == sum(v > tied.threshold for v in [0.2] * 5 + [0.8] * 5) / 10
    with pytest.raises(ConfigError, match="no scores"):
        calibrate_threshold([], 0.3)
    with pytest.raises(ConfigError, match="target share"):
        calibrate_threshold(values, 1.5)


def test_calibrate_to_thirty_percent_then_route_a_held_out_set():
    questions = [t.question for t in bundled_tasks().tasks]
    random.Random(0).shuffle(questions)
    calibration, held_out = questions[:150], questions[150:270]
    scorer = HeuristicScorer()
    cal = calibrate_threshold([scorer.score(q) for q in calibration], 0.3)
    assert abs(cal.achieved_share - 0.3) <= 0.05
    pool, models = make_pool()
    graph = create_route_graph(pool=pool, threshold=cal.threshold)
    paid = [answered_by(graph.invoke({"question": q})) == "big" for q in held_out]
    share = sum(paid) / len(held_out)
    assert abs(share - 0.3) <= 0.08, share
    assert paid == [scorer.score(q) > cal.threshold for q in held_out]


# -- labelled files ---------------------------------------------------------------------------
def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_labelled_reads_labels_and_paid_better(tmp_path):
    path = write_lines(tmp_path / "labels.jsonl", [
        json.dumps({"question": "Prove it.", "label": 1}),
        "",
        json.dumps({"question": "Add 2 and 2.", "label": 0}),
        json.dumps({"question": "Integrate x.", "paid_better": True}),
        json.dumps({"question": "Say hi.", "paid_better": False}),
    ])
    rows = load_labelled(path)
    assert [(r.question, r.label) for r in rows] == [
        ("Prove it.", 1.0), ("Add 2 and 2.", 0.0), ("Integrate x.", 1.0), ("Say hi.", 0.0)]


@pytest.mark.parametrize(("lines", "line_no", "needle"), [
    (['{"question": "a", "label": 1}', '{"question": "b", "label": '], 2, "invalid JSON"),
    (['{"question": "a", "label": 1}', '{"question": "b", "label": 0}', '{"question": "c"}'],
     3, "label"),
    (['{"question": "a", "label": 2}'], 1, "label"),
    (['{"label": 1}'], 1, "question"),
    (['["question", 1]'], 1, "question"),
])
def test_load_labelled_errors_name_file_and_line(tmp_path, lines, line_no, needle):
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(ColmGraphError) as info:
        load_labelled(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line_no}: ")
    assert needle in message and "\n" not in message


def test_load_labelled_empty_or_missing_file(tmp_path):
    empty = write_lines(tmp_path / "empty.jsonl", [""])
    with pytest.raises(ColmGraphError, match="no labelled examples"):
        load_labelled(empty)
    with pytest.raises(ColmGraphError) as info:
        load_labelled(tmp_path / "missing.jsonl")
    assert "missing.jsonl" in str(info.value) and "\n" not in str(info.value)


# -- embedding kNN scorer ---------------------------------------------------------------------
VOCAB = ["prove", "theorem", "integral", "probability", "add", "sum", "apple", "plus"]


def labelled_file(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "knn.jsonl", [json.dumps(r) for r in [
        {"question": "Prove the theorem about the integral.", "label": 1},
        {"question": "Compute the probability and prove it.", "label": 1},
        {"question": "Prove this theorem.", "label": 1},
        {"question": "Add two apples plus three apples.", "label": 0},
        {"question": "What is the sum of 2 plus 2?", "label": 0},
        {"question": "Add the apples.", "label": 0},
    ]])


def test_embedding_knn_scores_higher_near_label_one_examples(tmp_path):
    scorer = EmbeddingKNNScorer(BagOfWordsEmbeddings(VOCAB), load_labelled(labelled_file(tmp_path)),
                                k=3)
    hard = scorer.score("Prove the integral theorem.")
    easy = scorer.score("Add an apple plus an apple.")
    middle = scorer.score("Prove the sum.")
    assert hard > middle > easy
    assert hard == pytest.approx(1.0) and easy == pytest.approx(0.0)


def test_embedding_scorer_in_the_route_graph(tmp_path):
    emb = BagOfWordsEmbeddings(VOCAB)
    scorer = EmbeddingKNNScorer(emb, load_labelled(labelled_file(tmp_path)), k=3)
    pool, models = make_pool()
    graph = create_route_graph(pool=pool, threshold=0.5, scorer=scorer)
    assert answered_by(graph.invoke({"question": "Prove the theorem on probability."})) == "big"
    assert answered_by(graph.invoke({"question": "Add apples plus apples."})) == "small"
    # by name, the embedding scorer needs labelled examples, which only Python can give
    with pytest.raises(ConfigError, match="labelled examples"):
        create_route_graph(pool=pool, scorer="embedding", embeddings=emb)


def test_route_paid_calls_are_priced_in_the_ledger():
    pool, models = make_pool()
    out = create_route_graph(pool=pool, threshold=0.0).invoke({"question": "Prove it."})
    totals = ledger_totals(out["ledger"])
    assert totals["paid_calls"] == 1 and totals["local_calls"] == 0
    assert totals["paid_usd"] == pytest.approx((10 * 3.0 + 5 * 15.0) / 1e6)
