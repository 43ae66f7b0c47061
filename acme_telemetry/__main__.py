"""CLI: python -m acme_telemetry {generate,validate,local,query,bench} ...

Each subcommand lives with the code it drives; this module only dispatches. Bad input
gets a one-line error and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from acme_telemetry.errors import CliError

# subcommand module -> it defines register(subparsers), which adds parsers whose
# defaults carry func(args) -> int.
_COMMAND_MODULES = (
    "acme_telemetry.cli_core",  # generate, validate
    "acme_telemetry.local.cli",  # local, query
    "bench.run",  # bench
)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m acme_telemetry", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"{parser.prog} {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. `generate ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
