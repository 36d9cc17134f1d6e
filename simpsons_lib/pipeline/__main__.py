"""``python -m simpsons_lib.pipeline``: see ``pipeline.runner``; ``sweep``, ``status`` and ``compare`` are
``pipeline.commands``. ``--help`` (or no command) lists every command of both."""

import argparse
import sys

from . import commands, runner


def usage() -> argparse.ArgumentParser:
    """A parser whose help lists every command, each with its one line (``<command> --help``: its options)."""
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.pipeline",
                                     description="The study's pipeline: `python -m simpsons_lib.pipeline "
                                                 "<command> --help` gives a command's options.")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="command")
    for name, text in runner.COMMANDS + commands.COMMANDS:
        sub.add_parser(name, help=text)
    return parser


if sys.argv[1:2] and sys.argv[1] in dict(commands.COMMANDS):
    commands.main()
elif sys.argv[1:2] and sys.argv[1] in dict(runner.COMMANDS):
    runner.main()
else:
    usage().parse_args()
