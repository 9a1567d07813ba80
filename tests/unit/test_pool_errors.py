"""Malformed pool files give one-line ``PoolError`` messages (library and CLI), and valid
pool files, the built-in pool and Python-built pools load as written."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from colm_graph.cli.main import main
from colm_graph.errors import ColmGraphError, PoolError
from colm_graph.pool import ModelPool, ModelSpec, Price

ROOT = Path(__file__).resolve().parents[2]

SIM_A = """\
  - name: a
    provider: sim
    tier: local
"""
SIM_B = """\
  - name: b
    provider: sim
    tier: paid
"""


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    expected: tuple[str, ...]
    """Substrings the message must contain (besides the file path)."""
    entry: str | None = None
    """``models[i]`` for entry-level errors."""
    line: int | None = None
    """The ``:LINE`` that must follow the file path, where the loader knows it."""
    unset: tuple[str, ...] = ()
    """Environment variables that must be unset for this case."""
    forbidden: tuple[str, ...] = field(default=())
    """Substrings that must not appear (e.g. a key-like value)."""


CASES = [
    Case("empty-file", "", ("expected a mapping", "'models'", "empty file")),
    Case("comment-only-file", "# nothing here\n", ("expected a mapping", "empty file")),
    Case("top-level-list", "- name: a\n  provider: sim\n  tier: local\n",
         ("expected a mapping", "list")),
    Case("models-missing", "server: a\n", ("missing required field 'models'",)),
    Case("models-empty", "models: []\n", ("models", "at least 1")),
    Case("models-not-a-list", "models: {name: a}\n", ("models", "list")),
    Case("unknown-top-level-key", "models:\n" + SIM_A + "clients: [a]\n",
         ("unknown field 'clients'", "models", "server"), line=5),
    Case("unknown-key-in-entry",
         "models:\n" + SIM_A + SIM_B + "    colour: blue\n",
         ("unknown field 'colour'", "(model 'b')", "expected one of:", "api_key_env",
          "base_url", "provider", "tier", "price", "temperature"),
         entry="models[1]", line=8),
    Case("missing-name", "models:\n" + SIM_A + "  - provider: sim\n    tier: local\n",
         ("missing required field 'name'",), entry="models[1]", line=5),
    Case("missing-tier", "models:\n" + SIM_A + "  - name: b\n    provider: sim\n",
         ("(model 'b')", "missing required field 'tier'"), entry="models[1]", line=5),
    Case("bad-tier", "models:\n" + SIM_A + "  - name: b\n    provider: sim\n    tier: cheap\n",
         ("models[1].tier", "(model 'b')", "'local'", "'paid'", "'cheap'"),
         entry="models[1]", line=7),
    Case("bad-provider",
         "models:\n  - name: a\n    provider: anthropic\n    model: x\n    tier: paid\n",
         ("models[0].provider", "'openai'", "'huggingface'", "'sim'", "'anthropic'"),
         entry="models[0]", line=3),
    Case("negative-price",
         "models:\n" + SIM_A + SIM_B + "    price: {input: -1.0, output: 2.0}\n",
         ("models[1].price.input", "(model 'b')", "greater than or equal to 0", "-1.0"),
         entry="models[1]", line=8),
    Case("unknown-key-in-price",
         "models:\n" + SIM_A + SIM_B + "    price: {input: 1.0, cached: 0.5}\n",
         ("models[1].price", "unknown field 'cached'", "expected one of: input, output"),
         entry="models[1]", line=8),
    Case("duplicate-names", "models:\n" + SIM_A + SIM_A,
         ("models[1].name", "duplicate model name 'a'"), entry="models[1]", line=5),
    Case("server-unknown", "models:\n" + SIM_A + SIM_B + "server: big\n",
         ("server", "unknown model 'big'", "a, b"), line=8),
    Case("openai-without-model",
         "models:\n" + SIM_A + "  - name: gpt\n    provider: openai\n    tier: local\n"
         "    base_url: http://127.0.0.1:8000/v1\n",
         ("(model 'gpt')", "provider 'openai' needs field 'model'"), entry="models[1]"),
    Case("huggingface-without-model",
         "models:\n  - name: hf\n    provider: huggingface\n    tier: local\n",
         ("(model 'hf')", "provider 'huggingface' needs field 'model'"), entry="models[0]"),
    Case("base-url-on-sim",
         "models:\n" + SIM_A + "    base_url: http://127.0.0.1:8000/v1\n",
         ("(model 'a')", "'base_url' applies only to provider 'openai'"), entry="models[0]"),
    Case("base-url-not-http",
         "models:\n  - name: o\n    provider: openai\n    model: m\n    tier: local\n"
         "    base_url: ftp://127.0.0.1/v1\n",
         ("(model 'o')", "base_url must start with http:// or https://", "ftp://"),
         entry="models[0]"),
    Case("api-key-env-looks-like-a-key",
         "models:\n  - name: o\n    provider: openai\n    model: m\n    tier: paid\n"
         "    api_key_env: sk-abc123-xyz\n",
         ("(model 'o')", "api_key_env", "NAME of an environment variable", "not a key"),
         entry="models[0]", forbidden=("sk-abc123-xyz", "abc123")),
    Case("api-key-env-unset",
         "models:\n" + SIM_A + "  - name: o\n    provider: openai\n    model: m\n"
         "    tier: local\n    api_key_env: COLM_TEST_UNSET_KEY\n",
         ("(model 'o')", "api_key_env", "COLM_TEST_UNSET_KEY", "not set"),
         entry="models[1]", line=5, unset=("COLM_TEST_UNSET_KEY",)),
    Case("paid-openai-without-key",
         "models:\n  - name: gpt\n    provider: openai\n    model: gpt-4o\n    tier: paid\n",
         ("(model 'gpt')", "OPENAI_API_KEY", "not set", "paid"),
         entry="models[0]", line=2, unset=("OPENAI_API_KEY",)),
    Case("huggingface-dir-missing",
         "models:\n  - name: hf\n    provider: huggingface\n    model: ./no/such/model-dir\n"
         "    tier: local\n",
         ("(model 'hf')", "model", "no/such/model-dir", "not found"), entry="models[0]"),
    Case("api-key-env-on-sim",
         "models:\n" + SIM_A + "    api_key_env: MY_KEY\n",
         ("(model 'a')", "'api_key_env' applies only to provider 'openai'"), entry="models[0]"),
    Case("sim-skill-out-of-range",
         "models:\n" + SIM_A + SIM_B + "    sim: {skills: {math: 1.5}}\n",
         ("models[1].sim.skills", "(model 'b')", "'math'", "between 0 and 1", "1.5"),
         entry="models[1]"),
    Case("sim-default-skill-out-of-range",
         "models:\n" + SIM_A + "    sim: {default_skill: -0.1}\n",
         ("models[0].sim.default_skill", "greater than or equal to 0"), entry="models[0]"),
    Case("unknown-key-in-sim",
         "models:\n" + SIM_A + "    sim: {skill: {math: 0.5}}\n",
         ("models[0].sim", "unknown field 'skill'", "default_skill", "skills"),
         entry="models[0]", line=5),
    Case("invalid-yaml-syntax",
         "models:\n  - name: a\n    provider: sim\n    tier: [local\n",
         ("invalid YAML",)),
    Case("invalid-yaml-tab-indent", "models:\n\t- name: a\n", ("invalid YAML",), line=2),
    Case("name-with-spaces",
         "models:\n" + SIM_A + "  - name: my model\n    provider: sim\n    tier: local\n",
         ("models[1].name", "letters, digits", "'my model'"), entry="models[1]", line=5),
    Case("name-not-a-string",
         "models:\n  - name: [a]\n    provider: sim\n    tier: local\n",
         ("models[0].name", "string"), entry="models[0]"),
    Case("sim-block-on-openai",
         "models:\n  - name: o\n    provider: openai\n    model: m\n    tier: local\n"
         "    sim: {default_skill: 0.5}\n",
         ("(model 'o')", "'sim' applies only to provider 'sim'"), entry="models[0]"),
    Case("temperature-too-high",
         "models:\n" + SIM_A + SIM_B + "    temperature: 5\n",
         ("models[1].temperature", "(model 'b')", "less than or equal to 2", "5"),
         entry="models[1]", line=8),
    Case("entry-not-a-mapping", "models:\n  - just-a-name\n",
         ("models[0]", "'just-a-name'"), entry="models[0]", line=2),
]
CASE_IDS = [c.id for c in CASES]


def _write(tmp_path: Path, case: Case, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in case.unset:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # relative huggingface paths resolve here, not in the repo
    path = tmp_path / f"{case.id}.yaml"
    path.write_text(case.text, encoding="utf-8")
    return path


def _check_message(message: str, path: Path, case: Case) -> None:
    assert "\n" not in message and "\r" not in message, message
    assert "Traceback" not in message
    assert str(path) in message, message
    if case.line is not None:
        assert f"{path}:{case.line}:" in message, message
    if case.entry is not None:
        assert case.entry in message, message
    for part in case.expected:
        assert part in message, f"{part!r} not in {message!r}"
    for part in case.forbidden:
        assert part not in message, f"{part!r} in {message!r}"


def test_enough_cases() -> None:
    assert len(CASES) >= 20
    assert len(set(CASE_IDS)) == len(CASE_IDS)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_from_yaml_raises_one_line_pool_error(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, case, monkeypatch)
    with pytest.raises(PoolError) as info:
        ModelPool.from_yaml(path)
    assert isinstance(info.value, ColmGraphError)
    _check_message(str(info.value), path, case)
    # No pydantic/YAML exception chained behind the one-line message.
    assert info.value.__cause__ is None


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_cli_reports_pool_error_in_one_line(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = _write(tmp_path, case, monkeypatch)
    code = main(["run", "q", "--models", str(path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("colm-graph: error: "), err
    _check_message(err.rstrip("\n").removeprefix("colm-graph: error: "), path, case)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text("models:\n  - name: a\n    provider: sim\n    tier: [local\n", "utf-8")
    with pytest.raises(PoolError) as info:
        ModelPool.from_yaml(path)
    message = str(info.value)
    assert message.startswith(f"{path}:"), message
    line = int(message[len(str(path)) + 1:].split(":", 1)[0])
    assert 4 <= line <= 5, message  # the unclosed flow sequence, or the end of the file


SUBPROCESS_CASES = [c for c in CASES if c.id in
                    {"unknown-key-in-entry", "invalid-yaml-syntax", "paid-openai-without-key"}]


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[c.id for c in SUBPROCESS_CASES])
def test_console_script_exit_code(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, case, monkeypatch)
    proc = subprocess.run(
        [sys.executable, "-m", "colm_graph.cli", "run", "q", "--models", str(path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("colm-graph: error: ")
    _check_message(proc.stderr.rstrip("\n").removeprefix("colm-graph: error: "), path, case)


# --- valid pools ------------------------------------------------------------------

FULL_POOL = """\
# every field, every provider
models:
  - name: math-small
    provider: openai
    model: qwen2.5-math-1.5b
    base_url: http://127.0.0.1:8000/v1
    api_key_env: COLM_TEST_LOCAL_KEY
    tier: local
    price: {input: 0.0, output: 0.0}
    domains: [math, arithmetic]
    description: A small math model.
    max_tokens: 512
    temperature: 0.2
    timeout_s: 30
  - name: sim.geo_1
    provider: sim
    tier: local
    price: {input: 0.01, output: 0.02}
    domains: [geometry]
    sim: {skills: {geometry: 0.8}, default_skill: 0.5, adoption: 0.7, latency_s: 0,
          extra_output_tokens: 120, seed: 3}
  - name: hf-local
    provider: huggingface
    model: {hf_dir}
    tier: local
  - name: big-model
    provider: openai
    model: gpt-4o
    tier: paid
    price: {input: 2.5, output: 10}
  - name: other-paid
    provider: sim
    tier: paid
    price: {input: 1, output: 1}
server: other-paid
"""


@pytest.fixture
def full_pool_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    hf_dir = tmp_path / "hf-model"
    hf_dir.mkdir()
    monkeypatch.setenv("COLM_TEST_LOCAL_KEY", "local-key-value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai-value")
    path = tmp_path / "pool.yaml"
    path.write_text(FULL_POOL.replace("{hf_dir}", str(hf_dir)), encoding="utf-8")
    return path


def test_full_pool_round_trips(full_pool_file: Path) -> None:
    pool = ModelPool.from_yaml(full_pool_file)
    assert pool.names() == ["math-small", "sim.geo_1", "hf-local", "big-model", "other-paid"]
    assert pool.names("local") == ["math-small", "sim.geo_1", "hf-local"]
    assert pool.names("paid") == ["big-model", "other-paid"]
    assert pool.server == "other-paid"  # explicit, not the first paid model
    assert pool.source == str(full_pool_file)
    assert not pool.simulated

    small = pool.entry("math-small")
    assert small.provider == "openai"
    assert small.price == Price(input=0.0, output=0.0)
    assert small.domains == ("math", "arithmetic")
    assert small.description == "A small math model."
    assert small.spec is not None
    assert small.spec.model == "qwen2.5-math-1.5b"
    assert small.spec.base_url == "http://127.0.0.1:8000/v1"
    assert small.spec.key_env() == "COLM_TEST_LOCAL_KEY"
    assert (small.spec.max_tokens, small.spec.temperature, small.spec.timeout_s) == (512, 0.2, 30)

    geo = pool.entry("sim.geo_1")
    assert geo.simulated and geo.price == Price(input=0.01, output=0.02)
    assert geo.spec is not None and geo.spec.sim is not None
    assert geo.spec.sim.skills == {"geometry": 0.8}
    assert (geo.spec.sim.seed, geo.spec.sim.extra_output_tokens) == (3, 120)

    big = pool.entry("big-model")
    assert big.tier == "paid" and big.price == Price(input=2.5, output=10.0)
    assert big.spec is not None and big.spec.key_env() == "OPENAI_API_KEY"
    assert pool.entry("hf-local").provider == "huggingface"


def test_loading_a_pool_builds_no_client(full_pool_file: Path) -> None:
    pool = ModelPool.from_yaml(full_pool_file)
    assert all(e._model is None for e in pool)


def test_server_defaults_to_first_paid_model(full_pool_file: Path) -> None:
    text = full_pool_file.read_text(encoding="utf-8").replace("server: other-paid\n", "")
    full_pool_file.write_text(text, encoding="utf-8")
    pool = ModelPool.from_yaml(full_pool_file)
    assert pool.server == "big-model"


def test_server_defaults_to_last_model_without_paid(tmp_path: Path) -> None:
    path = tmp_path / "pool.yaml"
    path.write_text("models:\n" + SIM_A + "  - name: c\n    provider: sim\n    tier: local\n",
                    encoding="utf-8")
    assert ModelPool.from_yaml(path).server == "c"


def test_default_pool_loads() -> None:
    pool = ModelPool.default()
    assert pool.names() == ["sim-arith", "sim-algebra", "sim-geometry", "sim-numbers",
                            "sim-large"]
    assert pool.names("paid") == ["sim-large"]
    assert pool.server == "sim-large"
    assert pool.simulated
    assert pool.entry("sim-large").price == Price(input=2.5, output=10.0)


def test_api_key_value_never_in_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "sk-live-SECRET-0123456789"
    monkeypatch.setenv("COLM_TEST_KEY", secret)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    good = ("  - name: o\n    provider: openai\n    model: m\n    tier: paid\n"
            "    api_key_env: COLM_TEST_KEY\n")
    bad_files = {
        "bad-tier": "models:\n" + good + "  - name: b\n    provider: sim\n    tier: cheap\n",
        "unknown-field": "models:\n" + good + "  - name: b\n    provider: sim\n"
                         "    tier: local\n    colour: blue\n",
        "server": "models:\n" + good + "server: nope\n",
        "unset-env": "models:\n" + good + "  - name: p\n    provider: openai\n    model: m\n"
                     "    tier: paid\n    api_key_env: COLM_TEST_NOT_SET\n",
        "key-as-env-name": "models:\n  - name: o\n    provider: openai\n    model: m\n"
                           f"    tier: paid\n    api_key_env: {secret}\n",
    }
    monkeypatch.delenv("COLM_TEST_NOT_SET", raising=False)
    for label, text in bad_files.items():
        path = tmp_path / f"{label}.yaml"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(PoolError) as info:
            ModelPool.from_yaml(path)
        assert secret not in str(info.value), label
        assert "SECRET" not in str(info.value), label
        assert main(["run", "q", "--models", str(path)]) == 2
        out, err = capsys.readouterr()
        assert err.startswith("colm-graph: error: ") and secret not in err + out, label


# --- pools built in Python --------------------------------------------------------


def _fake() -> FakeListChatModel:
    return FakeListChatModel(responses=["Answer: 1"])


def test_add_langchain_model() -> None:
    model = _fake()
    pool = ModelPool().add("x", model, tier="local", domains=["math"],
                           price={"input": 0.5, "output": 1.0})
    assert pool.names() == ["x"]
    entry = pool.entry("x")
    assert entry.chat_model is model
    assert entry.tier == "local" and entry.provider == "langchain"
    assert entry.price == Price(input=0.5, output=1.0)
    assert entry.domains == ("math",)
    pool.add("y", _fake(), tier="paid")
    assert pool.server == "y"


def test_add_spec_and_model() -> None:
    spec = ModelSpec(name="s", provider="sim", tier="local")
    pool = ModelPool([spec]).add("x", _fake())
    assert pool.names() == ["s", "x"]
    assert pool.entry("s").simulated and not pool.entry("x").simulated


@pytest.mark.parametrize("bad", [object(), "gpt-4o", None, {"model": "x"}])
def test_add_non_model_raises(bad: object) -> None:
    pool = ModelPool()
    with pytest.raises(PoolError, match=r"model 'x'.*BaseChatModel"):
        pool.add("x", bad)  # type: ignore[arg-type]
    assert len(pool) == 0


def test_add_duplicate_name_raises() -> None:
    pool = ModelPool().add("x", _fake())
    with pytest.raises(PoolError, match="duplicate model name 'x'"):
        pool.add("x", _fake(), tier="paid")
    assert pool.entry("x").tier == "local"
    assert len(pool) == 1


def test_add_bad_tier_raises() -> None:
    pool = ModelPool()
    with pytest.raises(PoolError, match=r"tier.*'local'.*'paid'.*'cheap'"):
        pool.add("x", _fake(), tier="cheap")  # type: ignore[arg-type]
    assert "x" not in pool


def test_add_bad_name_raises() -> None:
    with pytest.raises(PoolError, match="invalid name"):
        ModelPool().add("my model", _fake())


def test_unknown_entry_lists_pool() -> None:
    pool = ModelPool().add("x", _fake())
    with pytest.raises(PoolError, match=r"unknown model 'nope' \(pool has: x\)"):
        pool.entry("nope")


def test_empty_pool_has_no_server() -> None:
    with pytest.raises(PoolError, match="empty"):
        _ = ModelPool().server
