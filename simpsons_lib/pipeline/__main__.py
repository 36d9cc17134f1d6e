"""``python -m simpsons_lib.pipeline``: see ``pipeline.runner``; ``sweep``, ``status`` and ``compare`` are
``pipeline.commands``; ``clean`` is ``pipeline.clean``. ``--help`` (or no command) lists every command."""

import argparse
import sys

if sys.argv[1:2] == ["clean"]:  # before the other commands' imports: clean works without the study's packages
    from .clean import main
    main()
    sys.exit(0)

from . import commands, runner  # noqa: E402

CLEAN = (("clean", "remove what the study wrote under the outputs folder (never data, nor files it did not make)"),)


def usage() -> argparse.ArgumentParser:
    """A parser whose help lists every command, each with its one line (``<command> --help``: its options)."""
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.pipeline",
                                     description="The study's pipeline: `python -m simpsons_lib.pipeline "
                                                 "<command> --help` gives a command's options.")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="command")
    for name, text in runner.COMMANDS + commands.COMMANDS + CLEAN:
        sub.add_parser(name, help=text)
    return parser


if sys.argv[1:2] and sys.argv[1] in dict(commands.COMMANDS):
    commands.main()
elif sys.argv[1:2] and sys.argv[1] in dict(runner.COMMANDS):
    runner.main()
else:
    usage().parse_args()
