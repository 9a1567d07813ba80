"""Fuzzing the loaders: malformed graph specs, pool files, eval datasets and labelled files,
made by mutating valid documents (keys dropped or added, values of the wrong type or
nesting, duplicate names, bad references, odd unicode, very long strings, deep nesting) and
from raw random text and bytes. The contract: a loader either succeeds or raises the
project's own :class:`ColmGraphError` with a one-line message and no traceback text; a spec
that loads also builds (over the built-in pool) under the same contract, and so does every
model of a pool that loads. Nothing else may escape. A handful go through the CLI too: exit
code 2 and one line on stderr.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from colm_graph.cli.main import main
from colm_graph.errors import ColmGraphError
from colm_graph.evaluation import load_dataset
from colm_graph.pool import ModelPool
from colm_graph.routing.scorers import load_labelled
from colm_graph.spec import load_graph, load_spec, parse_spec

ROOT = Path(__file__).resolve().parents[2]
KEY_ENV = "COLM_FUZZ_KEY"


def fuzz(examples: int) -> settings:
    """Hypothesis settings: ``examples`` runs, no deadline, no example database (nothing
    written into the checkout; a failure prints its example)."""
    return settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# -- the contract ---------------------------------------------------------------------------


def check_message(exc: BaseException) -> str:
    message = str(exc)
    assert message.strip(), f"{type(exc).__name__} with an empty message"
    assert len(message.splitlines()) == 1, f"message is not one line: {message!r}"
    assert "Traceback" not in message and 'File "' not in message, message
    return message


def contract(fn: Callable[[], Any]) -> Any:
    """``fn()``'s result, or ``None`` when it raised a well-formed ColmGraphError; any other
    exception propagates (and fails the test)."""
    try:
        return fn()
    except ColmGraphError as exc:
        check_message(exc)
        return None


def build_pool(pool: ModelPool) -> None:
    """Everything a loaded pool offers, under the contract (local Hugging Face models are
    not built: that would load weights from whatever directory the document named)."""
    repr(pool)
    pool.names()
    contract(lambda: pool.server)
    for entry in pool:
        repr(entry)
        entry.profile()
        if entry.provider in ("sim", "openai"):
            contract(lambda e=entry: repr(e.chat_model))


def spec_contract(text: str) -> None:
    spec = contract(lambda: parse_spec(text, source="fuzz.yaml"))
    if spec is not None:
        contract(lambda: load_graph(spec, pool=ModelPool.default()))


# -- valid documents to mutate --------------------------------------------------------------

PROBE_SPEC = """\
name: probe
description: a probe graph
parameters: {t: 0.5, samples: 2, rounds: 2}
roles:
  worker: {tier: local}
  judge: {tier: paid, count: 1}
nodes:
  draft: {kind: answer, role: worker, samples: $samples}
  tally: {kind: vote}
  settle: {kind: aggregate, role: judge}
  finish: {kind: finish}
edges:
  - {from: START, to: draft}
  - {from: draft, to: tally}
  - from: tally
    branches:
      - when: {agreement_below: $t}
        to: settle
    default: finish
  - {from: settle, to: finish}
  - {from: finish, to: END}
"""

SPECS = [yaml.safe_load(p.read_text(encoding="utf-8"))
         for p in sorted((ROOT / "graphs").glob("*.yaml"))] + [yaml.safe_load(PROBE_SPEC)]

POOLS: list[dict[str, Any]] = [
    yaml.safe_load((ROOT / "colm_graph" / "pool" / "default_pool.yaml").read_text("utf-8")),
    {"models": [
        {"name": "local-a", "provider": "openai", "model": "m-a",
         "base_url": "http://127.0.0.1:9/v1", "tier": "local", "domains": ["arithmetic"]},
        {"name": "big", "provider": "openai", "model": "m-big", "tier": "paid",
         "base_url": "http://127.0.0.1:9/v1", "api_key_env": KEY_ENV,
         "price": {"input": 5.0, "output": 15.0}, "max_tokens": 256, "temperature": 0.2,
         "timeout_s": 30},
        {"name": "tiny", "provider": "huggingface", "model": ".", "tier": "local",
         "description": "a local directory"},
        {"name": "sim", "provider": "sim", "tier": "local",
         "sim": {"skills": {"algebra": 0.9}, "default_skill": 0.4, "reachable": False}},
    ], "server": "big"},
]

DATASET_ROWS: list[dict[str, Any]] = [
    json.loads(line) for line in
    (ROOT / "evals" / "datasets" / "colm_tasks.jsonl").read_text(encoding="utf-8").splitlines()[:3]
] + [
    {"question": "Tom has 3 apples and buys 4. How many?", "answer": "3 + 4 = 7\n#### 7"},
    {"problem": "Solve 2x = 7.", "solution": "So $x = \\boxed{7/2}$."},
    {"id": "mc1", "question": "Pick one", "choices": ["red", "green", 3], "answer": "B"},
    {"id": "mc2", "question": "Pick one\nA) x\nB) y", "choices": ["x", "y"], "answer": 1},
    {"id": "img", "question": "What is shown?", "answer": "a dot", "image": "dot.png",
     "domain": "vision"},
]

LABELLED_ROWS: list[dict[str, Any]] = [
    {"question": "What is 2 + 2?", "label": 0},
    {"question": "Prove the Riemann hypothesis.", "label": 1},
    {"question": "Name a prime.", "paid_better": False},
]

# -- junk values ----------------------------------------------------------------------------

WORDS = [
    # spec and pool vocabulary, so mutations hit the semantic checks and not only the schema
    "START", "END", "_begin", "__start__", "answer", "revise", "select", "vote", "finish",
    "degrade", "plan", "execute", "guide", "aggregate", "score", "verify", "question", "path",
    "ledger", "local", "paid", "any", "sim", "openai", "huggingface", "anthropic", "sim-large",
    "sim-arith", "client", "server", "solver", "$samples", "$t", "$rounds", "$nope", "$",
    "agreed", "paid_reachable", "not", "all", "any", "flag", "score_above", "rounds_at_least",
    "guidance", "peers", "selected", "role", "majority", "home", "auto", "client_draft",
    "server_guide", "https://", "http://127.0.0.1:9/v1", "OPENAI_API_KEY", KEY_ENV,
    "sk-not-a-key-123", "#### 5", "\\boxed{", "A", "Z", ".", "/", "..", "~", "-", "- x", ": ",
    "{", "[", "*x", "&x", "!!int", "|", "%YAML", "---", "...",
    # unicode and control characters
    "", " ", "\t", "\n", "ünïcødé", "名前", "\u202e", "\u2028", "\x00", "\x1b[31m", "\ufeff",
    "🙂", "e\u0301", "\ud7ff", "\uffff",
    # long and path-like strings
    "a" * 65, "x" * 5000, "long " * 2000, "a/" * 3000,
]

names = st.one_of(st.sampled_from(WORDS), st.text(max_size=12),
                  st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(-3, 70),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(WORDS), st.text(max_size=30),
)


def nested(depth: int, kind: str) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


junk = st.one_of(
    scalars,
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.one_of(names, st.integers(), st.none()), inner,
                                   max_size=3), max_leaves=8),
    st.builds(nested, st.integers(1, 200), st.sampled_from(["list", "dict"])),
)

# -- mutations ------------------------------------------------------------------------------

Path_ = tuple[Any, ...]


def paths(doc: Any, prefix: Path_ = ()) -> Iterator[Path_]:
    """Every place in ``doc`` (the root included)."""
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from paths(v, (*prefix, i))


def get(doc: Any, path: Path_) -> Any:
    for part in path:
        doc = doc[part]
    return doc


def put(doc: Any, path: Path_, value: Any) -> Any:
    if not path:
        return value
    get(doc, path[:-1])[path[-1]] = value
    return doc


def strings(doc: Any) -> list[str]:
    out: list[str] = []
    for p in paths(doc):
        if p and isinstance(p[-1], str):
            out.append(p[-1])
        v = get(doc, p)
        if isinstance(v, str):
            out.append(v)
    return out or ["x"]


MUTATIONS = ("drop", "replace", "insert", "wrap_list", "wrap_dict", "unwrap", "retype",
             "duplicate", "reference", "rename", "swap")


@st.composite
def mutated(draw: st.DrawFn, bases: list[Any]) -> Any:
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 4))):
        places = list(paths(doc))
        where = draw(st.sampled_from(places))
        target = get(doc, where)
        op = draw(st.sampled_from(MUTATIONS))
        parent = get(doc, where[:-1]) if where else None
        if op == "drop" and where:
            del parent[where[-1]]
        elif op == "replace":
            doc = put(doc, where, draw(junk))
        elif op == "insert" and isinstance(target, dict):
            target[draw(st.one_of(names, st.integers(), st.none(), st.booleans()))] = draw(junk)
        elif op == "insert" and isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), draw(junk))
        elif op == "wrap_list":
            doc = put(doc, where, [target])
        elif op == "wrap_dict":
            doc = put(doc, where, {draw(names): target})
        elif op == "unwrap" and isinstance(target, dict | list) and target:
            inner = list(target.values()) if isinstance(target, dict) else target
            doc = put(doc, where, copy.deepcopy(draw(st.sampled_from(inner))))
        elif op == "retype":
            doc = put(doc, where, retype(target))
        elif op == "duplicate" and isinstance(target, list) and target:
            target.append(copy.deepcopy(draw(st.sampled_from(target))))
        elif op == "duplicate" and isinstance(target, dict) and target:
            key = draw(st.sampled_from(list(target)))
            target[f"{key}2" if isinstance(key, str) else draw(names)] = copy.deepcopy(target[key])
        elif op == "reference":  # a name from elsewhere in the document, maybe misspelt
            ref = draw(st.sampled_from(strings(doc)))
            doc = put(doc, where, draw(st.sampled_from([ref, ref + "x", ref.upper(), "$" + ref])))
        elif op == "rename" and isinstance(parent, dict):
            new = draw(st.one_of(names, st.sampled_from(strings(doc))))
            parent[new] = parent.pop(where[-1])
        elif op == "swap" and isinstance(target, dict | list) and len(target) > 1:
            keys = list(target) if isinstance(target, dict) else list(range(len(target)))
            a, b = draw(st.sampled_from(keys)), draw(st.sampled_from(keys))
            target[a], target[b] = target[b], target[a]
    return doc


def retype(value: Any) -> Any:
    """The same information as another type: "2" for 2, ["a"] for "a", {} for [], ..."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        try:
            return yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError:
            return [value]
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value)}
    if isinstance(value, dict):
        return [[k, v] for k, v in value.items()]
    return "null"


def to_yaml(doc: Any, style: str) -> str:
    if style == "json":
        return json.dumps(doc, ensure_ascii=False)
    return yaml.safe_dump(doc, allow_unicode=style == "unicode", sort_keys=False,
                          default_flow_style=style == "flow", width=80)


YAML_CHARS = ":-[]{}&*!|>%@`'\"#,?\t\n abc0"
YAML_NOISE = st.text(alphabet=YAML_CHARS, min_size=1, max_size=6)


@st.composite
def text_edit(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few character-level edits (syntax errors, indentation, duplicate
    lines: the damage a hand edit does)."""
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(text)))
        j = draw(st.integers(i, min(len(text), i + 40)))
        op = draw(st.sampled_from(["insert", "delete", "replace", "dup_line", "indent"]))
        if op == "insert":
            text = text[:i] + draw(YAML_NOISE) + text[i:]
        elif op == "delete":
            text = text[:i] + text[j:]
        elif op == "replace":
            text = text[:i] + draw(YAML_NOISE) + text[j:]
        else:
            lines = text.splitlines(keepends=True) or [""]
            k = draw(st.integers(0, len(lines) - 1))
            lines.insert(k, lines[k]) if op == "dup_line" else lines.__setitem__(
                k, draw(st.sampled_from([" ", "\t", "  "])) + lines[k])
            text = "".join(lines)
    return text


@st.composite
def yaml_documents(draw: st.DrawFn, bases: list[Any]) -> str:
    """A mutated document as YAML (block, flow or JSON style), sometimes hand-damaged."""
    doc = draw(mutated(bases))
    text = to_yaml(doc, draw(st.sampled_from(["block", "flow", "unicode", "json"])))
    if draw(st.integers(0, 4)) == 0:
        text = draw(text_edit(text))
    return text


raw_text = st.one_of(st.text(max_size=300), st.text(alphabet=YAML_CHARS, max_size=100))
raw_bytes = st.binary(max_size=300)

# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder for documents written to disk, holding the image one dataset row names; the
    API-key variable the pools name is set meanwhile (module scope: hypothesis runs many
    examples per test)."""
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "dot.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    before = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = "sk-fuzz-not-a-real-key"
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = before


def write(folder: Path, name: str, data: str | bytes) -> Path:
    path = folder / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8", errors="surrogatepass")
    return path


# -- sanity: the bases are valid and the contract can fail ----------------------------------


def test_base_documents_are_valid(work: Path) -> None:
    for doc in SPECS:
        load_graph(parse_spec(to_yaml(doc, "block")), pool=ModelPool.default())
    for i, doc in enumerate(POOLS):
        build_pool(ModelPool.from_yaml(write(work, f"pool{i}.yaml", to_yaml(doc, "block"))))
    rows = "\n".join(json.dumps(r) for r in DATASET_ROWS)
    assert len(load_dataset(write(work, "base.jsonl", rows))) == len(DATASET_ROWS)
    labelled = "\n".join(json.dumps(r) for r in LABELLED_ROWS)
    assert len(load_labelled(write(work, "labelled.jsonl", labelled))) == len(LABELLED_ROWS)


def test_contract_rejects_foreign_errors_and_multiline_messages() -> None:
    def boom() -> None:
        raise KeyError("models")

    with pytest.raises(KeyError):
        contract(boom)
    bad = ColmGraphError("x")
    bad.args = ("line one\nline two",)
    with pytest.raises(AssertionError, match="one line"):
        check_message(bad)
    assert contract(lambda: 7) == 7


def test_mutations_mostly_break_documents() -> None:
    """The generators do produce invalid documents (a fuzzer that only makes valid ones
    would prove nothing)."""
    failures = 0

    @settings(max_examples=40, deadline=None, database=None, derandomize=True)
    @given(text=yaml_documents(SPECS))
    def probe(text: str) -> None:
        nonlocal failures
        if contract(lambda: parse_spec(text)) is None:
            failures += 1

    probe()
    assert failures >= 20


# -- specs ----------------------------------------------------------------------------------


@pytest.mark.slow
@fuzz(250)
@given(text=yaml_documents(SPECS))
def test_mutated_specs(text: str) -> None:
    spec_contract(text)


@fuzz(60)
@given(data=st.one_of(raw_text, raw_bytes))
def test_random_text_and_bytes_as_specs(work: Path, data: str | bytes) -> None:
    if isinstance(data, str):
        spec_contract(data)
    spec = contract(lambda: load_spec(write(work, "raw_spec.yaml", data)))
    if spec is not None:
        contract(lambda: load_graph(spec, pool=ModelPool.default()))


# -- pools ----------------------------------------------------------------------------------


@pytest.mark.slow
@fuzz(300)
@given(doc=mutated(POOLS), style=st.sampled_from(["block", "flow", "unicode", "json"]),
       damage=st.data())
def test_mutated_pool_files(work: Path, doc: Any, style: str, damage: st.DataObject) -> None:
    text = to_yaml(doc, style)
    if damage.draw(st.integers(0, 4)) == 0:
        text = damage.draw(text_edit(text))
    pool = contract(lambda: ModelPool.from_yaml(write(work, "pool.yaml", text)))
    if pool is not None:
        build_pool(pool)
    if isinstance(doc, dict):
        pool = contract(lambda: ModelPool.from_dict(doc, source="fuzz"))
        if pool is not None:
            build_pool(pool)


@fuzz(60)
@given(data=st.one_of(raw_text, raw_bytes))
def test_random_text_and_bytes_as_pool_files(work: Path, data: str | bytes) -> None:
    pool = contract(lambda: ModelPool.from_yaml(write(work, "raw_pool.yaml", data)))
    if pool is not None:
        build_pool(pool)


# -- datasets and labelled files ------------------------------------------------------------


@st.composite
def jsonl_documents(draw: st.DrawFn, rows: list[dict[str, Any]]) -> str:
    doc = draw(mutated([rows]))
    lines = (doc if isinstance(doc, list) else [doc])
    text = "\n".join(json.dumps(r, ensure_ascii=draw(st.booleans())) for r in lines)
    if draw(st.integers(0, 3)) == 0:
        text = draw(text_edit(text))
    return text


@fuzz(120)
@given(text=jsonl_documents(DATASET_ROWS))
def test_mutated_datasets(work: Path, text: str) -> None:
    items = contract(lambda: load_dataset(write(work, "data.jsonl", text)))
    for item in items or []:
        assert isinstance(item.question, str) and isinstance(item.answer, str)


@fuzz(60)
@given(text=jsonl_documents(LABELLED_ROWS))
def test_mutated_labelled_files(work: Path, text: str) -> None:
    contract(lambda: load_labelled(write(work, "labelled.jsonl", text)))


@fuzz(60)
@given(data=st.one_of(raw_text, raw_bytes.filter(lambda b: _is_utf8(b))))
def test_random_text_and_bytes_as_datasets(work: Path, data: str | bytes) -> None:
    contract(lambda: load_dataset(write(work, "raw.jsonl", data)))
    contract(lambda: load_labelled(write(work, "raw.jsonl", data)))


@fuzz(30)
@given(data=raw_bytes)
def test_random_bytes_as_datasets(work: Path, data: bytes) -> None:
    contract(lambda: load_dataset(write(work, "raw.jsonl", data)))


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


NASTY_LABELLED = {
    "not-utf8": b'{"question": "caf\xe9", "label": 1}\n',
    "deep-array": b"[" * 100_000,
    "huge-integer": b'{"question": "q", "label": ' + b"1" * 5000 + b"}\n",
}


@pytest.mark.parametrize("data", list(NASTY_LABELLED.values()), ids=list(NASTY_LABELLED))
def test_nasty_labelled_files(work: Path, data: bytes) -> None:
    contract(lambda: load_labelled(write(work, "nasty_labelled.jsonl", data)))


# -- documents that once escaped as other errors ------------------------------------------

SINGLE = (ROOT / "graphs" / "single.yaml").read_text(encoding="utf-8")
FINISH = "  finish: {kind: finish, options: {output: majority}}"
WHEN = ("\n          not:\n            all: [paid_reachable, {budget_left_usd_above: 0},"
        " residency_ok,\n                  {fits_deadline: solver}]")
LAUGHS = "".join(f"      - &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]\n" for i in range(1, 9))

NASTY_SPECS = {
    "deep-list": "[" * 2000 + "]" * 2000,
    "deep-mapping": "{a: " * 2000 + "1" + "}" * 2000,
    "deep-block": "".join("  " * i + "k:\n" for i in range(2000)),
    "deep-option": SINGLE.replace(FINISH, "  finish: {kind: finish, options: {output: "
                                  + "[" * 400 + "]" * 400 + "}}"),
    "alias-cycle-list": SINGLE.replace(FINISH, "  finish: {kind: finish, options:"
                                       " {output: &a [*a]}}"),
    "alias-cycle-mapping": SINGLE.replace(FINISH, "  finish: {kind: finish, options:"
                                          " &a {output: *a}}"),
    "alias-cycle-document": "&a {name: x, nodes: *a, edges: [*a]}",
    "billion-laughs": SINGLE.replace(f"when:{WHEN}", "when:\n        all:\n"
                                     "      - &l0 agreed\n" + LAUGHS + "      - *l8"),
    "huge-integer": SINGLE.replace("max_paid_usd: null", "max_paid_usd: " + "9" * 5000),
    "huge-integer-underscores": "name: x\nk: 1_" + "0" * 5000 + "\n",
    "bad-date": SINGLE.replace("name: single", "name: 2001-13-45"),
    "bad-day": "name: 2001-02-30\n",
    "explicit-int": "name: !!int foo\n",
    "explicit-float": "name: !!float foo\n",
    "explicit-timestamp": "name: !!timestamp foo\n",
    "explicit-bool": "name: !!bool maybe\n",
    "python-tag": "name: !!python/object/apply:os.system [echo hi]\n",
    "long-bare-name": "a" * 5000,
}


@pytest.mark.parametrize("text", list(NASTY_SPECS.values()), ids=list(NASTY_SPECS))
def test_nasty_specs(work: Path, text: str) -> None:
    spec_contract(text)
    contract(lambda: load_spec(write(work, "nasty.yaml", text)))


def test_nasty_spec_names() -> None:
    contract(lambda: load_spec("a" * 5000))  # a bare name: looked up among shipped graphs
    contract(lambda: load_spec("a/" * 3000 + "x.yaml"))


NASTY_POOLS = {
    "huge-integer": "models:\n  - {name: a, provider: sim, tier: local, max_tokens: "
                    + "9" * 5000 + "}\n",
    "alias-cycle": "models: &m [*m]\n",
    "deep": "models: " + "[" * 1000 + "]" * 1000 + "\n",
    "long-hf-directory": "models:\n  - {name: h, provider: huggingface, tier: local, model: "
                         + "a" * 5000 + "}\n",
    "bad-date": "models:\n  - {name: a, provider: sim, tier: local, description: 2001-13-45}\n",
}


@pytest.mark.parametrize("text", list(NASTY_POOLS.values()), ids=list(NASTY_POOLS))
def test_nasty_pool_files(work: Path, text: str) -> None:
    pool = contract(lambda: ModelPool.from_yaml(write(work, "nasty_pool.yaml", text)))
    assert pool is None


@pytest.mark.parametrize("value", [10 ** 5000, -(10 ** 5000)], ids=["big", "negative"])
def test_pool_from_dict_with_huge_integers(value: int) -> None:
    entry = {"name": "a", "provider": "sim", "tier": "local"}
    for field in ("name", "max_tokens", "temperature"):
        assert contract(lambda f=field: ModelPool.from_dict(
            {"models": [{**entry, f: value}]})) is None
    assert contract(lambda: ModelPool.from_dict(
        {"models": [{**entry, "price": {"input": value}}]})) is None


NASTY_DATASETS = {
    "deep-array": "[" * 100_000,
    "deep-object": '{"a": ' * 5000 + "1" + "}" * 5000,
    "huge-integer": '{"question": "q", "answer": ' + "1" * 5000 + "}",
    "long-image-name": json.dumps({"question": "q", "answer": "1", "image": "a" * 5000}),
    "long-image-path": json.dumps({"question": "q", "answer": "1", "image": "a/" * 3000}),
    "nul-image-path": json.dumps({"question": "q", "answer": "1", "image": "x\x00y"}),
}


@pytest.mark.parametrize("text", list(NASTY_DATASETS.values()), ids=list(NASTY_DATASETS))
def test_nasty_datasets(work: Path, text: str) -> None:
    assert contract(lambda: load_dataset(write(work, "nasty.jsonl", text))) is None


# -- the command line ----------------------------------------------------------------------


def run_cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_cli_error(code: int, out: str, err: str) -> None:
    assert code == 2, (code, err)
    assert err.startswith("colm-graph: error: ") and err.endswith("\n"), err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert out == ""


@fuzz(12)
@given(text=yaml_documents(SPECS))
def test_cli_run_with_malformed_spec(work: Path, text: str) -> None:
    if contract(lambda: parse_spec(text)) is not None:
        return  # a valid spec would run; only the errors are under test here
    path = write(work, "cli_spec.yaml", text)
    assert_cli_error(*run_cli(["run", "What is 2 + 2?", "--graph", str(path)]))


@fuzz(12)
@given(doc=mutated(POOLS))
def test_cli_run_with_malformed_pool(work: Path, doc: Any) -> None:
    text = to_yaml(doc, "block")
    path = write(work, "cli_pool.yaml", text)
    if contract(lambda: ModelPool.from_yaml(path)) is not None:
        return
    assert_cli_error(*run_cli(["run", "What is 2 + 2?", "--graph", "single",
                               "--models", str(path)]))


@pytest.mark.parametrize("name", ["deep-list", "alias-cycle-list", "huge-integer", "bad-date",
                                  "explicit-bool"])
def test_cli_run_with_nasty_spec(work: Path, name: str) -> None:
    path = write(work, "cli_nasty.yaml", NASTY_SPECS[name])
    assert_cli_error(*run_cli(["run", "q", "--graph", str(path)]))
    assert_cli_error(*run_cli(["draw", str(path), "-o", str(work / "out.mmd")]))


@pytest.mark.parametrize("name", ["deep-array", "huge-integer", "long-image-name"])
def test_cli_eval_with_nasty_dataset(work: Path, name: str) -> None:
    path = write(work, "cli_nasty.jsonl", NASTY_DATASETS[name])
    assert_cli_error(*run_cli(["eval", "--graphs", "single", "--dataset", str(path),
                               "--out", str(work / f"eval-{name}"), "--quiet"]))


@pytest.mark.parametrize("argv", [
    ["run", "q", "--graph", "single", "--param", "max_paid_usd=" + "9" * 5000],
    ["eval", "--graphs", "single", "--sweep", "single.max_paid_usd=" + "9" * 5000,
     "--limit", "1", "--quiet"],
], ids=["run-param", "eval-sweep"])
def test_cli_values_with_huge_integers(work: Path, argv: list[str]) -> None:
    if argv[0] == "eval":
        argv = [*argv, "--out", str(work / "eval-sweep")]
    assert_cli_error(*run_cli(argv))
