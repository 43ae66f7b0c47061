"""The parser and the dispatch: one module per command registers its subparser.

Bad input is one line on stderr and exit 2 (a failed run: exit 1), never an argparse
usage dump or a traceback.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn, Protocol, cast

from acme_telemetry.cli import bench, generate, local, query, validate
from acme_telemetry.cli.errors import CliError
from acme_telemetry.cli.flags import Subparsers

PROG = "acme-telemetry"
DESCRIPTION = "ACME telemetry: generate, validate, run locally, query and benchmark the data stack."

Handler = Callable[[argparse.Namespace], int]


class Command(Protocol):
    def register(self, sub: Subparsers) -> None: ...


# In help order. Each module's register(sub) adds one subparser whose defaults carry func.
COMMANDS: tuple[Command, ...] = (generate, validate, local, query, bench)

# "argument --port: --port must be ..." -> "--port must be ..."
_ARGUMENT = re.compile(r"^argument (?P<flag>[^:]+): (?P<rest>.*)$", re.S)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, no usage dump
        m = _ARGUMENT.match(message)
        if m:
            flag = m["flag"].split("/")[-1]  # "-h/--help" style names: the long one
            message = m["rest"] if m["rest"].startswith(flag) else f"{flag}: {m['rest']}"
        self.exit(2, f"{self.prog}: error: {_one_line(message)}\n")


def _one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = Parser(prog=prog, description=DESCRIPTION)
    # the subparsers are Parser too (one-line errors); commands see plain ArgumentParsers
    sub = cast(Subparsers, parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser))
    for command in COMMANDS:
        command.register(sub)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Runs one command; returns its exit code (the console script's entry point)."""
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a parse error (2), already printed
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    func: Handler = args.func
    try:
        return func(args)
    except CliError as exc:
        print(f"{prog} {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # e.g. `generate ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130
