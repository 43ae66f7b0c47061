"""`python -m acme_telemetry.simulator.build_kernel [--target T ...] [--dest DIR]`: builds the
simulator's kernel with zig cc (scripts/setup runs it; no system C compiler needed).

Without options it builds for this host where library_path() looks and prints the path;
with --target (a zig target, e.g. aarch64-linux-gnu.2.28) or --dest it builds each target
into DIR (default beside kernel.c) and prints each path. (A module of its own so that
`-m` does not run a module the package has already imported.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from acme_telemetry.simulator import kernel


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m acme_telemetry.simulator.build_kernel", description="Builds the simulator's kernel with zig cc."
    )
    p.add_argument(
        "--target", action="append", help=f"zig target, repeatable (default this host's; Lambda: {', '.join(kernel.TARGETS.values())})"
    )
    p.add_argument("--dest", type=Path, help="output folder (default: beside kernel.c, or the cache)")
    args = p.parse_args(argv)
    try:
        if args.dest is None and not args.target:
            print(kernel.library_path())
            return 0
        for target in args.target or [kernel.host_target()]:
            print(kernel.build(args.dest or kernel.SOURCE.parent, target))
    except kernel.KernelBuildError as exc:
        print(f"build_kernel: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
