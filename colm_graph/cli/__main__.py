"""``python -m colm_graph.cli``."""

from colm_graph.cli.main import main

raise SystemExit(main())
