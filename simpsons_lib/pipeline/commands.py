"""The commands that read and extend the pipeline's record without changing it:

    python -m simpsons_lib.pipeline sweep   --profile demo --run mid_cnn --grid "lr=1e-3,3e-4 epochs=6,12"
    python -m simpsons_lib.pipeline sweep   --profile demo --file mid_cnn_lr    # params/demo/sweeps/mid_cnn_lr.yaml
    python -m simpsons_lib.pipeline status  --profile demo                      # current, will re-run (why), failed
    python -m simpsons_lib.pipeline compare mid_cnn mid_cnn-3fa9c2 --profile demo
"""

from __future__ import annotations

import argparse
import os

from ..config import params, paths
from ..config.params import ParameterError
from ..reporting import compare
from . import runner


COMMANDS = (("sweep", "one run over a grid or a list of overrides, each point an override run"),
            ("status", "each run: current, will re-run (and why), or failed"),
            ("compare", "the parameter diff and the metric deltas of two runs"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.pipeline", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sweep = sub.add_parser("sweep", help=dict(COMMANDS)["sweep"])
    sweep.add_argument("--profile", required=True)
    sweep.add_argument("--run", help="the run swept (with --grid)")
    sweep.add_argument("--grid", help='e.g. "lr=1e-3,3e-4 epochs=6,12" (every combination)')
    sweep.add_argument("--grid-from-env", metavar="NAME", help="the grid from environment variable NAME (make's GRID)")
    sweep.add_argument("--file", help="a sweep file: params/<profile>/sweeps/<FILE>.yaml")
    sweep.add_argument("--name", help="the roll-up's name (default: the sweep file's, else the run's)")
    sweep.add_argument("--max-points", type=int, default=None,
                       help="the most points a sweep may start (default: the environment's MAX_POINTS, which "
                            "`make sweep MAX_POINTS=N` sets, else the sweep file's max_points, else 64)")
    status = sub.add_parser("status", help=dict(COMMANDS)["status"])
    status.add_argument("--profile", required=True)
    cmp = sub.add_parser("compare", help=dict(COMMANDS)["compare"])
    cmp.add_argument("run_a")
    cmp.add_argument("run_b")
    cmp.add_argument("--profile", required=True)
    args = parser.parse_args(argv)
    with runner.one_line_errors(args.cmd):
        if args.cmd == "sweep":
            from . import sweep as sweeps

            grid = os.environ.get(args.grid_from_env, "") if args.grid_from_env else args.grid
            cap = args.max_points
            if cap is None and os.environ.get("MAX_POINTS"):
                try:
                    cap = int(os.environ["MAX_POINTS"])
                except ValueError:
                    raise ParameterError(f"MAX_POINTS: a whole number, got {os.environ['MAX_POINTS'][:40]!r}") from None
            if cap is not None and cap < 1:
                raise ParameterError(f"--max-points / MAX_POINTS: at least 1, got {cap}")
            code = sweeps.main(args.profile, args.run, grid or None, args.file, args.name, cap)
            from ..reporting import index_page  # the index lists the sweep's page

            index_page.build(paths.StudyPaths(args.profile), params.profile_runs(args.profile))
            raise SystemExit(code)
        if args.cmd == "status":
            from . import status as statuses

            raise SystemExit(statuses.main(args.profile))
        params.check_profile_name(args.profile)
        print(compare.compare(paths.StudyPaths(args.profile), args.run_a, args.run_b))
