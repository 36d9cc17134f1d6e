"""``python -m simpsons_lib.pipeline``: see ``pipeline.runner``; ``sweep``, ``status`` and ``compare`` are
``pipeline.commands``; ``clean`` is
``pipeline.clean``."""

import sys

if sys.argv[1:2] and sys.argv[1] in ("sweep", "status", "compare"):
    from .commands import main
elif sys.argv[1:2] == ["clean"]:
    from .clean import main
else:
    from .runner import main

main()
