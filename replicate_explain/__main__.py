"""``python -m replicate_explain``: the command line."""

from .cli import main

raise SystemExit(main())
