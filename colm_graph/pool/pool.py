"""The model pool: which models a run may call, their tier, prices and specialisation.

A pool is loaded from a YAML file (:meth:`ModelPool.from_yaml`), built in Python from
:class:`ModelSpec` objects, or given any LangChain ``BaseChatModel`` (:meth:`ModelPool.add`).
Provider clients are built lazily, on first use, so loading a pool never imports torch or
opens a connection.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
)

from colm_graph.core.validation import describe_error
from colm_graph.core.yamlfile import YamlDoc, load_yaml
from colm_graph.errors import PoolError

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

from colm_graph.pool.latency import LatencyBook
from colm_graph.pool.links import Links
from colm_graph.pool.spec import (
    ANSWER_FORMATS,
    NAME_RE,
    SYSTEM_PROMPT_MODES,
    AnswerFormat,
    ModelSpec,
    Price,
    SimSettings,
    SystemPrompt,
)

__all__ = ["DEFAULT_POOL_FILE", "ModelPool", "ModelSpec", "PoolEntry", "Price", "SimSettings"]

DEFAULT_POOL_FILE = Path(__file__).with_name("default_pool.yaml")

@dataclass
class PoolEntry:
    """A model in a pool: its metadata plus a lazily built LangChain chat model."""

    name: str
    tier: Literal["local", "paid"]
    price: Price = field(default_factory=lambda: Price())
    domains: tuple[str, ...] = ()
    description: str = ""
    spec: ModelSpec | None = None
    answer_format: AnswerFormat = "text"
    """``json``: structured replies are asked for (see :class:`ModelSpec`)."""
    system_prompt: SystemPrompt = "separate"
    """``fold``: calls put the system part of a prompt into the user turn (see
    :func:`colm_graph.core.prompts.fold_system`)."""
    expected_latency_s: float | None = None
    """Seconds a call usually takes (seeds :attr:`ModelPool.latency`)."""
    residency: Literal["local", "cloud"] | None = None
    """May it receive private data (see :class:`ModelSpec`)."""
    _model: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def provider(self) -> str:
        return self.spec.provider if self.spec is not None else "langchain"

    @property
    def simulated(self) -> bool:
        return self.provider == "sim"

    @property
    def chat_model(self) -> BaseChatModel:
        """The LangChain chat model, built on first use."""
        with self._lock:
            if self._model is None:
                from colm_graph.pool.providers import build_chat_model

                assert self.spec is not None
                self._model = build_chat_model(self.spec)
            return self._model

    def reachable(self, timeout_s: float = 2.0) -> bool:
        """Whether the model's endpoint answers: a TCP connect for ``openai`` entries, the
        ``reachable`` setting for simulated ones; local models and objects are reachable."""
        spec = self.spec
        if spec is None or spec.provider == "huggingface":
            return True
        if spec.provider == "sim":
            return spec.sim is None or spec.sim.reachable
        from urllib.parse import urlsplit

        url = urlsplit(spec.base_url or "https://api.openai.com/v1")
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            import socket

            with socket.create_connection((url.hostname or "", port), timeout=timeout_s):
                return True
        except OSError:
            return False

    def profile(self) -> str:
        """Domains and description in one line (used by selectors and prompts)."""
        domains = ", ".join(self.domains) or "general questions"
        return f"{domains}. {self.description}".strip()


class _PoolFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    models: list[ModelSpec] = Field(min_length=1)
    server: str | None = None


class ModelPool:
    """An ordered set of named models.

    Example:
        >>> pool = ModelPool.default()
        >>> pool.names()[:2]
        ['sim-arith', 'sim-algebra']
    """

    def __init__(
        self,
        models: Iterable[ModelSpec | PoolEntry] = (),
        *,
        server: str | None = None,
        source: str = "pool",
    ) -> None:
        self.source = source
        self._entries: dict[str, PoolEntry] = {}
        for m in models:
            self._insert(m if isinstance(m, PoolEntry) else _entry_from_spec(m))
        self._server: str | None = None
        if server is not None:
            self.server = server
        self._latency: LatencyBook | None = None
        self._links: Links | None = None

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path: str | Path) -> ModelPool:
        """Load and validate a pool file; raises :class:`PoolError` with a one-line message."""
        try:
            doc = load_yaml(path, what="models file")
        except PoolError:
            raise
        except Exception as exc:  # ColmGraphError from the YAML layer
            raise PoolError(str(exc)) from None
        return cls._from_doc(doc, base_dir=Path(path).resolve().parent)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "pool") -> ModelPool:
        """Validate a pool given as a mapping (the shape of a pool file)."""
        return cls._from_doc(YamlDoc(data, None, source))

    @classmethod
    def default(cls) -> ModelPool:
        """The built-in simulated pool: four local specialists and one paid server."""
        return cls.from_yaml(DEFAULT_POOL_FILE)

    @classmethod
    def _from_doc(cls, doc: YamlDoc, base_dir: Path | None = None) -> ModelPool:
        data = doc.data
        if not isinstance(data, Mapping):
            got = "an empty file" if data is None else type(data).__name__
            raise PoolError(f"{doc.source}: expected a mapping with a 'models' list, got {got}")

        def where(loc: Any) -> str:
            place = doc.where(loc)
            if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
                items = data.get("models")
                item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
                if isinstance(item, Mapping) and isinstance(item.get("name"), str):
                    place += f" (model {item['name']!r})"
            return place

        try:
            parsed = _PoolFile.model_validate(data)
        except ValidationError as exc:
            raise PoolError(describe_error(exc, where, model=_PoolFile)) from None
        seen: set[str] = set()
        models = [_resolve_paths(spec, base_dir) for spec in parsed.models]
        for i, spec in enumerate(models):
            if spec.name in seen:
                raise PoolError(f"{where(['models', i, 'name'])}: duplicate model name"
                                f" {spec.name!r}")
            seen.add(spec.name)
            _check_environment(spec, where(["models", i]))
        if parsed.server is not None and parsed.server not in seen:
            raise PoolError(f"{where(['server'])}: unknown model {parsed.server!r}"
                            f" (pool has: {', '.join(sorted(seen))})")
        return cls(models, server=parsed.server, source=doc.source)

    def add(
        self,
        name: str,
        model: BaseChatModel | ModelSpec,
        *,
        tier: Literal["local", "paid"] = "local",
        price: Price | Mapping[str, float] | None = None,
        domains: Iterable[str] = (),
        description: str = "",
        system_prompt: SystemPrompt | None = None,
        answer_format: AnswerFormat | None = None,
        expected_latency_s: float | None = None,
        residency: Literal["local", "cloud"] | None = None,
    ) -> ModelPool:
        """Add a model: a :class:`ModelSpec` or any LangChain chat model object. Returns self.

        ``system_prompt``: ``"separate"`` (default; a spec's own setting) sends the system part
        of each prompt as a system message, ``"fold"`` puts it into the user turn.
        ``answer_format``: ``"text"`` (default) or ``"json"`` (ask for JSON-schema replies).
        ``expected_latency_s`` and ``residency``: as in a pool file (for a deadline, and for
        private runs)."""
        if residency not in (None, "local", "cloud"):
            raise PoolError(f"{self.source}: model {name!r}: residency: expected 'local' or"
                            f" 'cloud', got {residency!r}")
        if expected_latency_s is not None and (isinstance(expected_latency_s, bool) or not
                                               isinstance(expected_latency_s, int | float)
                                               or not expected_latency_s > 0):
            raise PoolError(f"{self.source}: model {name!r}: expected_latency_s: expected a"
                            f" positive number of seconds, got {expected_latency_s!r}")
        if answer_format is not None and answer_format not in ANSWER_FORMATS:
            raise PoolError(f"{self.source}: model {name!r}: answer_format: expected"
                            f" 'text' or 'json', got {answer_format!r}")
        if system_prompt is not None and system_prompt not in SYSTEM_PROMPT_MODES:
            raise PoolError(f"{self.source}: model {name!r}: system_prompt: expected"
                            f" 'separate' or 'fold', got {system_prompt!r}")
        if isinstance(model, ModelSpec):
            if system_prompt is not None and system_prompt != model.system_prompt:
                model = model.model_copy(update={"system_prompt": system_prompt})
            if answer_format is not None and answer_format != model.answer_format:
                model = model.model_copy(update={"answer_format": answer_format})
            for key, value in (("expected_latency_s", expected_latency_s),
                               ("residency", residency)):
                if value is not None:
                    model = model.model_copy(update={key: value})
            entry = _entry_from_spec(model)
        else:
            from langchain_core.language_models import BaseChatModel

            if not isinstance(model, BaseChatModel):
                raise PoolError(f"{self.source}: model {name!r}: expected a LangChain"
                                f" BaseChatModel or ModelSpec, got {type(model).__name__}")
            if tier not in ("local", "paid"):
                raise PoolError(f"{self.source}: model {name!r}: tier: expected 'local' or"
                                f" 'paid', got {tier!r}")
            if not NAME_RE.match(name):
                raise PoolError(f"{self.source}: model {name!r}: invalid name")
            from colm_graph.pool.wire import count_bytes

            count_bytes(model)  # a ChatOpenAI's HTTP bytes, as for the pool's own entries
            p = price if isinstance(price, Price) else Price(**(price or {}))
            entry = PoolEntry(name=name, tier=tier, price=p, domains=tuple(domains),
                              description=description,
                              system_prompt=system_prompt or "separate",
                              answer_format=answer_format or "text",
                              expected_latency_s=expected_latency_s, residency=residency,
                              _model=model)
        self._insert(entry)
        return self

    def warm_clients(self) -> None:
        """Build the clients of the ``openai`` models now (the first one imports the SDK,
        about a second): a run with a deadline then spends its time on calls. A client that
        cannot be built (a key not set) fails again where a run calls it, and is handled
        there."""
        for entry in self:
            if entry.provider == "openai":
                try:
                    entry.chat_model  # noqa: B018 (built on first use)
                except Exception:  # noqa: S112 - reported where a run calls it
                    continue

    @property
    def latency(self) -> LatencyBook:
        """Expected latency per model, learned from this pool's calls (seeded from the
        entries' ``expected_latency_s``)."""
        if self._latency is None:
            self._latency = LatencyBook({e.name: float(e.expected_latency_s) for e in self
                                         if e.expected_latency_s is not None})
        return self._latency

    @property
    def links(self) -> Links:
        """Reachability verdicts of this pool's models, each with its back-off
        (:mod:`colm_graph.run.links`)."""
        if self._links is None:
            self._links = Links(lambda name: self.entry(name).reachable())
        return self._links

    def _insert(self, entry: PoolEntry) -> None:
        self._latency = None
        if entry.name in self._entries:
            raise PoolError(f"{self.source}: duplicate model name {entry.name!r}")
        self._entries[entry.name] = entry

    # -- access -------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[PoolEntry]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def names(self, tier: str | None = None) -> list[str]:
        return [e.name for e in self if tier is None or e.tier == tier]

    def entry(self, name: str) -> PoolEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise PoolError(f"{self.source}: unknown model {name!r}"
                            f" (pool has: {', '.join(self._entries) or 'nothing'})") from None

    @property
    def server(self) -> str:
        """Default server model: the pool's ``server``, else the first paid model, else the last."""
        if self._server is not None:
            return self._server
        paid = self.names("paid")
        if paid:
            return paid[0]
        if not self._entries:
            raise PoolError(f"{self.source}: the pool is empty")
        return list(self._entries)[-1]

    @server.setter
    def server(self, name: str) -> None:
        self.entry(name)
        self._server = name

    def with_seed(self, seed: int) -> ModelPool:
        """A copy whose simulated models draw from ``seed`` (added to each model's own seed);
        other entries are shared with this pool."""
        entries: list[ModelSpec | PoolEntry] = []
        for e in self:
            if e.spec is not None and e.spec.provider == "sim" and seed:
                sim = e.spec.sim or SimSettings()
                entries.append(e.spec.model_copy(
                    update={"sim": sim.model_copy(update={"seed": sim.seed + seed})}))
            else:
                entries.append(e)
        return ModelPool(entries, server=self._server, source=self.source)

    @property
    def simulated(self) -> bool:
        """True when every model of the pool is the built-in simulator."""
        return bool(self._entries) and all(e.simulated for e in self)

    def __repr__(self) -> str:
        return f"ModelPool({', '.join(f'{e.name}:{e.tier}' for e in self)})"


def _entry_from_spec(spec: ModelSpec) -> PoolEntry:
    return PoolEntry(name=spec.name, tier=spec.tier, price=spec.price,
                     domains=tuple(spec.domains), description=spec.description, spec=spec,
                     system_prompt=spec.system_prompt, answer_format=spec.answer_format,
                     expected_latency_s=spec.expected_latency_s, residency=spec.residency)


def _resolve_paths(spec: ModelSpec, base_dir: Path | None) -> ModelSpec:
    """A relative ``huggingface`` model directory is relative to the pool file."""
    if spec.provider != "huggingface" or base_dir is None or Path(str(spec.model)).is_absolute():
        return spec
    return spec.model_copy(update={"model": str(base_dir / str(spec.model))})


def _is_dir(path: str) -> bool:
    try:
        return Path(path).is_dir()
    except OSError:  # e.g. a name too long for the file system
        return False


def _check_environment(spec: ModelSpec, where: str) -> None:
    if spec.provider == "openai" and spec.tier == "paid" and spec.key_env() is None:
        raise PoolError(f"{where}: api_key_env: a paid model at base_url {spec.base_url!r}"
                        " needs the NAME of the variable holding its key (no key is sent to"
                        " an endpoint whose entry does not name one)")
    env = spec.key_env()
    if env is not None and not os.environ.get(env):
        if spec.api_key_env is not None or spec.tier == "paid":
            raise PoolError(f"{where}: api_key_env: environment variable {env} is not set"
                            f" (it must hold the API key of this {spec.tier} model)")
    if spec.provider == "huggingface" and not _is_dir(str(spec.model)):
        raise PoolError(f"{where}: model: local model directory {spec.model!r} not found"
                        " (provider 'huggingface' loads local directories only)")
