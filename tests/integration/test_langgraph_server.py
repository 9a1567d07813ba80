"""The deployment entry point (``langgraph.json`` + ``colm_graph.integrations.deploy``) and a real
``langgraph dev`` server over 127.0.0.1.

The first tests are quick checks of the config and the module. The server test copies the
files a deployment needs into a temporary folder (``langgraph dev`` writes ``.langgraph_api/``
into its working directory), starts the in-memory LangGraph API server on a free port with
analytics and the version check switched off, and drives it with ``langgraph-sdk`` and
``RemoteGraph``; the results must match in-process runs on the default (simulated) pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from langgraph.graph.state import CompiledStateGraph

from colm_graph import ModelPool, PoolError, bundled_graphs, ledger_totals, load_graph, load_spec
from colm_graph.pool import DEFAULT_POOL_FILE
from colm_graph.pool.providers.sim.tasks import bundled_tasks

if TYPE_CHECKING:
    from langgraph_sdk.client import LangGraphClient

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "langgraph.json"

# What a deployment of the repository needs (the package finds graphs/, prompts/ and the task
# set next to itself in a source tree).
_COPY = ("langgraph.json", "pyproject.toml", "README.md", "colm_graph", "graphs", "prompts",
         "evals/datasets")
_QUIET_ENV = {"LANGGRAPH_CLI_NO_ANALYTICS": "1", "LANGGRAPH_NO_VERSION_CHECK": "1"}
_READY_TIMEOUT_S = 60.0
# Fields of a ledger record that depend on the clock, not on the run.
_CLOCK_FIELDS = ("latency_s", "started_at")


def _config() -> dict[str, Any]:
    data = json.loads(CONFIG.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _import_target(target: str) -> tuple[ModuleType, str]:
    """Load ``module:attr`` or ``./file.py:attr`` as the LangGraph API server does."""
    where, _, attr = target.rpartition(":")
    assert where and attr, f"{target!r} is not '<module>:<attribute>'"
    if "/" not in where:
        return importlib.import_module(where), attr
    path = (CONFIG.parent / where).resolve()
    modspec = importlib.util.spec_from_file_location(f"_deploy_check_{path.stem}", path)
    assert modspec is not None and modspec.loader is not None, f"cannot load {path}"
    module = importlib.util.module_from_spec(modspec)
    modspec.loader.exec_module(module)
    return module, attr


# --- langgraph.json and colm_graph.integrations.deploy (quick) ------------------------


def test_langgraph_json_lists_exactly_the_shipped_variants() -> None:
    config = _config()
    assert config.get("dependencies") == ["."]
    assert config.get("python_version") == "3.11"
    graphs = config["graphs"]
    assert sorted(graphs) == bundled_graphs()


@pytest.mark.parametrize("name", bundled_graphs())
def test_langgraph_json_entry_resolves_to_a_compiled_graph(name: str) -> None:
    entry = _config()["graphs"][name]
    target = entry["path"] if isinstance(entry, dict) else entry
    module, attr = _import_target(target)
    # The server reads module.__dict__ (a module __getattr__ would not be consulted).
    graph = module.__dict__.get(attr)
    assert isinstance(graph, CompiledStateGraph), f"{target} is {type(graph).__name__}"
    assert graph.get_name() == name
    assert graph.checkpointer is None and graph.store is None  # the server brings its own
    if isinstance(entry, dict) and "description" in entry:
        assert entry["description"] == load_spec(name).description


def test_langgraph_json_passes_the_cli_validation() -> None:
    config_mod = pytest.importorskip("langgraph_cli.config")
    validated = config_mod.validate_config_file(CONFIG)
    assert sorted(validated["graphs"]) == bundled_graphs()


def test_deploy_module_exposes_every_variant() -> None:
    from colm_graph.integrations import deploy

    assert sorted(deploy.graphs) == bundled_graphs()
    for name, graph in deploy.graphs.items():
        assert getattr(deploy, name) is graph
        assert name in deploy.__all__


def test_pool_from_env_reads_only_colm_graph_models(tmp_path: Path) -> None:
    from colm_graph.integrations.deploy import MODELS_ENV, pool_from_env

    default = ModelPool.default().names()
    assert pool_from_env({}).names() == default
    assert pool_from_env({MODELS_ENV: "  "}).names() == default
    text = DEFAULT_POOL_FILE.read_text(encoding="utf-8")
    assert "name: sim-large" in text
    pool_file = tmp_path / "pool.yaml"
    pool_file.write_text(text.replace("sim-large", "sim-huge"), encoding="utf-8")
    pool = pool_from_env({MODELS_ENV: str(pool_file)})
    assert "sim-huge" in pool.names() and "sim-large" not in pool.names()
    with pytest.raises(PoolError, match="missing.yaml"):
        pool_from_env({MODELS_ENV: str(tmp_path / "missing.yaml")})


def test_build_graphs_uses_the_given_pool() -> None:
    from colm_graph.integrations.deploy import build_graphs

    pool = ModelPool.default()
    built = build_graphs(pool)
    assert sorted(built) == bundled_graphs()
    question = bundled_tasks().tasks[0].question
    got = built["single"].invoke({"question": question})
    assert got["answer"] == load_graph("single", pool=pool).invoke({"question": question})["answer"]


def test_deploy_import_fails_on_a_bad_pool_file(tmp_path: Path) -> None:
    env = {**os.environ, "COLM_GRAPH_MODELS": str(tmp_path / "nowhere.yaml")}
    done = subprocess.run([sys.executable, "-c", "import colm_graph.integrations.deploy"],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode != 0
    assert "PoolError" in done.stderr and "nowhere.yaml" in done.stderr


# --- a real `langgraph dev` server --------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _deploy_copy(dest: Path) -> Path:
    for rel in _COPY:
        src = REPO / rel
        if src.is_dir():
            shutil.copytree(src, dest / rel, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            dest.joinpath(rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _langgraph_command() -> list[str]:
    script = Path(sys.executable).with_name("langgraph")
    return [str(script)] if script.exists() else [sys.executable, "-m", "langgraph_cli"]


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # ignore *_PROXY


def _ready(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class _Server:
    def __init__(self, proc: subprocess.Popen[bytes], log: Path, url: str) -> None:
        self.proc, self.log, self.url = proc, log, url

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    @contextlib.contextmanager
    def log_on_error(self) -> Iterator[None]:
        """Write the server's log to stderr (shown with the failure) if the block fails."""
        try:
            yield
        except BaseException:
            sys.stderr.write(f"--- langgraph dev log ({self.log}) ---\n{self.log_text()}\n")
            raise


@pytest.fixture
def langgraph_server(tmp_path: Path) -> Iterator[_Server]:
    pytest.importorskip("langgraph_cli", reason="langgraph-cli[inmem] (dev extra) not installed")
    pytest.importorskip("langgraph_api", reason="langgraph-cli[inmem] (dev extra) not installed")
    root = _deploy_copy(tmp_path / "deploy")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **_QUIET_ENV}
    env.pop("COLM_GRAPH_MODELS", None)  # the built-in simulated pool
    # The copied package comes first on the server's path, so the copy is what is served.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    log = tmp_path / "langgraph_dev.log"
    cmd = [*_langgraph_command(), "dev", "--host", "127.0.0.1", "--port", str(port),
           "--no-browser", "--no-reload"]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    server = _Server(proc, log, url)
    try:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not _ready(f"{url}/ok"):
            if proc.poll() is not None:
                pytest.fail(f"langgraph dev exited with {proc.returncode}:\n{server.log_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"langgraph dev not ready after {_READY_TIMEOUT_S:.0f}s:\n"
                            f"{server.log_text()}")
            time.sleep(0.25)
        yield server
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
    else:  # the server is gone; make sure nothing it started lingers
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _record_view(record: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in record.items() if k not in _CLOCK_FIELDS},
                      sort_keys=True)


def _assert_same_run(remote: Mapping[str, Any], local: Mapping[str, Any], what: str) -> None:
    assert remote["answer"] == local["answer"], what
    for key in ("answers", "stop_reason", "degraded", "rounds"):
        assert remote.get(key) == local.get(key), f"{what}: {key}"
    assert remote["ledger"], f"{what}: empty ledger"
    assert sorted(map(_record_view, remote["ledger"])) == sorted(
        map(_record_view, local["ledger"])), f"{what}: ledger records"
    remote_totals = dict(ledger_totals(remote["ledger"]))
    local_totals = dict(ledger_totals(local["ledger"]))
    remote_totals.pop("latency_s")
    local_totals.pop("latency_s")
    assert remote_totals == local_totals, what


async def _check_server(client: LangGraphClient, cases: Mapping[str, str]) -> None:
    """Assistants, one thread + run per case, and a RemoteGraph run of ``single``."""
    from langgraph.pregel.remote import RemoteGraph

    assistants = await asyncio.wait_for(client.assistants.search(limit=100), 30)
    assert sorted(a["graph_id"] for a in assistants) == bundled_graphs()
    by_graph = {a["graph_id"]: a for a in assistants}
    assert by_graph["colm"]["description"] == load_spec("colm").description

    for name, question in cases.items():
        if name == "single":
            continue
        expected = load_graph(name).invoke({"question": question})
        # One thread per run: a thread keeps its state, and the ledger's reducer would add
        # a second run's records to the first's.
        thread = await client.threads.create()
        got = await asyncio.wait_for(
            client.runs.wait(thread["thread_id"], name, input={"question": question}), 30)
        assert isinstance(got, dict), got
        _assert_same_run(got, expected, name)

    question = cases["single"]
    expected = load_graph("single").invoke({"question": question})
    remote = RemoteGraph("single", client=client)
    got = await asyncio.wait_for(remote.ainvoke({"question": question}), 30)
    assert isinstance(got, dict), got
    _assert_same_run(got, expected, "single via RemoteGraph")


@pytest.mark.integration
@pytest.mark.slow
async def test_langgraph_dev_serves_every_variant(langgraph_server: _Server) -> None:
    from langgraph_sdk import get_client

    tasks = bundled_tasks().tasks
    cases = {"colm": tasks[1].question, "cope": tasks[0].question, "single": tasks[2].question}
    client = get_client(url=langgraph_server.url)
    with langgraph_server.log_on_error():
        try:
            await _check_server(client, cases)
        finally:
            await client.aclose()
        assert langgraph_server.proc.poll() is None, "the server died during the test"
