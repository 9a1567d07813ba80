"""The ``colm-graph`` command line: one module per subcommand, :mod:`.main` dispatches."""

__all__: list[str] = []
