"""Pictures of graphs and of runs, offline: Mermaid text, the in-house SVG/PNG layout engine,
and the HTML trace of a run."""

__all__: list[str] = []
