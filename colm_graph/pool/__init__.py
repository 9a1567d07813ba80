"""The model pool: which models a run may call (:mod:`~colm_graph.pool.spec`), the pool
itself (:mod:`~colm_graph.pool.pool`) and the providers that build each entry's chat model."""

from colm_graph.pool.pool import DEFAULT_POOL_FILE, ModelPool, PoolEntry
from colm_graph.pool.spec import ModelSpec, Price, SimSettings

__all__ = ["DEFAULT_POOL_FILE", "ModelPool", "ModelSpec", "PoolEntry", "Price", "SimSettings"]
