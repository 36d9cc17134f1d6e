"""``python -m simpsons_lib.pipeline``: see ``pipeline.runner``; ``sweep``, ``status`` and ``compare`` are
``pipeline.commands``."""

import sys

if sys.argv[1:2] and sys.argv[1] in ("sweep", "status", "compare"):
    from .commands import main
else:
    from .runner import main

main()
