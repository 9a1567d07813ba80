"""The ``colm-graph`` command line: one module per subcommand, :mod:`.main` dispatches."""
