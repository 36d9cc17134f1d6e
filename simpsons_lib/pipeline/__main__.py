"""``python -m simpsons_lib.pipeline``: see ``pipeline.runner``."""

from .runner import main

main()
