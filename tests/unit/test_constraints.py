"""A run's constraints besides money (``colm_graph/run/constraints.py``): how they are set
(``with_constraints``, ``configurable`` over graph parameters), when a relative deadline
starts, when a run is private, and which models may hold private data."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from colm_graph import ModelPool, with_constraints
from colm_graph.run.constraints import (
    deadline_of,
    may_hold_private,
    private_of,
    upload_cap_of,
)

# -- with_constraints -------------------------------------------------------------------------


def test_with_constraints_sets_the_keys_a_run_reads():
    before = time.time()
    cfg = with_constraints(deadline_s=2.5, private=True, private_detect=True,
                           max_upload_bytes=4096)
    conf = cfg["configurable"]
    assert before + 2.5 <= conf["colm_deadline"] <= time.time() + 2.5
    assert (conf["private"], conf["private_detect"], conf["max_upload_bytes"]) == \
        (True, True, 4096)
    assert with_constraints() == {"configurable": {}}


def test_with_constraints_keeps_what_the_config_already_has():
    cfg = with_constraints({"configurable": {"thread_id": "t-1"}, "tags": ["mine"]},
                           private=False, max_upload_bytes=0)
    assert cfg["tags"] == ["mine"]
    assert cfg["configurable"] == {"thread_id": "t-1", "private": False,
                                   "max_upload_bytes": 0}


def test_with_constraints_takes_any_callable_as_a_detector():
    def detector(question: str) -> bool:
        return "secret" in question

    assert with_constraints(private_detect=detector)["configurable"]["private_detect"] \
        is detector


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"deadline_s": 0}, "deadline_s"),
    ({"deadline_s": -1.0}, "deadline_s"),
    ({"deadline_s": math.nan}, "deadline_s"),
    ({"deadline_s": "5"}, "deadline_s"),
    ({"deadline_s": True}, "deadline_s"),
    ({"private": "yes"}, "private"),
    ({"private": 1}, "private"),
    ({"private_detect": "emails"}, "private_detect"),
    ({"private_detect": 3}, "private_detect"),
    ({"max_upload_bytes": -1}, "max_upload_bytes"),
    ({"max_upload_bytes": 10.5}, "max_upload_bytes"),
    ({"max_upload_bytes": True}, "max_upload_bytes"),
    ({"max_upload_bytes": "4k"}, "max_upload_bytes"),
])
def test_bad_values_are_refused_in_one_line_naming_the_field(kwargs, field):
    with pytest.raises(ValueError) as info:
        with_constraints(**kwargs)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{field}: expected ")
    assert repr(next(iter(kwargs.values())))[:10] in message  # the value given


# -- deadline_of: where a deadline is anchored ----------------------------------------------


def test_no_deadline_without_one():
    assert deadline_of({}, {}, {}) is None


def test_an_absolute_deadline_wins_over_a_relative_one():
    state = {"ledger": [{"started_at": 100.0}]}
    assert deadline_of(state, {"deadline_s": 5}, {"colm_deadline": 123.5,
                                                  "deadline_s": 9}) == 123.5


def test_a_relative_deadline_counts_from_the_runs_first_call():
    state = {"ledger": [{"started_at": 250.0}, {"started_at": 200.0}, {"node": "x"}]}
    assert deadline_of(state, {"deadline_s": 3}, {}) == 203.0
    # the configurable's value wins over the graph parameter
    assert deadline_of(state, {"deadline_s": 3}, {"deadline_s": 0.5}) == 200.5


def test_a_relative_deadline_before_any_call_counts_from_now():
    before = time.time()
    at = deadline_of({"ledger": []}, {"deadline_s": 2}, {})
    assert at is not None and before + 2 <= at <= time.time() + 2


# -- private_of and upload_cap_of -------------------------------------------------------------


def test_private_is_set_by_the_flag_and_the_configurable_wins():
    assert private_of({}, {"private": True}, {}) is True
    assert private_of({}, {}, {"private": True}) is True
    assert private_of({}, {"private": True}, {"private": False}) is False
    assert private_of({}, {}, {}) is False


def test_the_built_in_detector_reads_the_question():
    mail = {"question": "Reply to ana@example.com: what is 6 * 7?"}
    sums = {"question": "What is 123456789 * 987654321?"}
    assert private_of(mail, {"private_detect": True}, {}) is True
    assert private_of(sums, {"private_detect": True}, {}) is False
    assert private_of(mail, {}, {}) is False  # no detector asked for


def test_a_callable_detector_is_called_with_the_question():
    seen: list[str] = []

    def detector(question: str) -> bool:
        seen.append(question)
        return question.startswith("Patient")

    assert private_of({"question": "Patient 7: dose?"}, {}, {"private_detect": detector})
    assert not private_of({"question": "What is 2+2?"}, {}, {"private_detect": detector})
    assert seen == ["Patient 7: dose?", "What is 2+2?"]


def test_the_upload_cap_is_read_as_a_whole_number():
    assert upload_cap_of({}, {}) is None
    assert upload_cap_of({"max_upload_bytes": "2048"}, {}) == 2048
    assert upload_cap_of({"max_upload_bytes": 2048}, {"max_upload_bytes": 100}) == 100


# -- may_hold_private: the residency rule -----------------------------------------------------


def entry(**fields: Any) -> Any:
    base = {"name": "m", "provider": "openai", "model": "m", "tier": "local"}
    if fields.get("tier") == "paid":
        base |= {"price": {"input": 1.0, "output": 2.0}, "api_key_env": "COLM_RESIDENCY_KEY"}
    pool = ModelPool.from_dict({"models": [{**base, **fields}]}, source="residency-test")
    return pool.entry("m")


@pytest.mark.parametrize(("base_url", "allowed"), [
    ("http://127.0.0.1:8000/v1", True),
    ("http://localhost:8000/v1", True),
    ("http://gpu.localhost:8000/v1", True),
    ("http://[::1]:8000/v1", True),
    ("http://[::ffff:127.0.0.1]:8000/v1", True),
    ("http://10.1.2.3:8000/v1", True),
    ("http://172.20.0.5:8000/v1", True),
    ("http://192.168.1.20:8000/v1", True),
    ("http://[fd12:3456::1]:8000/v1", True),
    ("http://169.254.10.1:8000/v1", True),      # link-local
    ("http://8.8.8.8:8000/v1", False),          # public
    ("http://203.0.113.5:9/v1", False),         # documentation range: not a private network
    ("http://100.64.0.1:8000/v1", False),       # carrier-grade NAT: the provider's network
    ("http://[::ffff:8.8.8.8]:8000/v1", False),
    ("http://gpu-box.lan:8000/v1", False),      # a name: where it resolves is not known
    ("https://api.openai.com/v1", False),
])
def test_a_local_tier_endpoint_may_hold_private_data_at_a_private_address_only(base_url,
                                                                               allowed):
    assert may_hold_private(entry(base_url=base_url)) is allowed


def test_openais_own_endpoint_is_never_private():
    assert may_hold_private(entry()) is False  # no base_url: api.openai.com


def test_in_process_models_may_hold_private_data():
    sim = ModelPool.from_dict({"models": [{"name": "s", "provider": "sim", "tier": "local"}]},
                              source="residency-test").entry("s")
    assert may_hold_private(sim) is True


def test_paid_entries_may_not_unless_their_residency_says_local(monkeypatch):
    monkeypatch.setenv("COLM_RESIDENCY_KEY", "sk-residency-test")
    assert may_hold_private(entry(tier="paid", base_url="http://127.0.0.1:9/v1")) is False
    assert may_hold_private(entry(tier="paid", base_url="https://x.example/v1",
                                  residency="local")) is True


def test_an_explicit_residency_wins_over_the_address():
    assert may_hold_private(entry(base_url="http://127.0.0.1:9/v1", residency="cloud")) \
        is False
    assert may_hold_private(entry(base_url="http://8.8.8.8:9/v1", residency="local")) is True
