"""``python -m replicate_explain``: the command line."""

from ._cli import main

raise SystemExit(main())
