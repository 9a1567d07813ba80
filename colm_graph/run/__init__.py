"""One model call as a run makes it: planned against the run's budget (:mod:`.budget`),
made and recorded (:mod:`.calls`, :mod:`.record`), a paid stream read under a cap
(:mod:`.stream_guard`). Sits above the pool, below the nodes."""

__all__: list[str] = []
