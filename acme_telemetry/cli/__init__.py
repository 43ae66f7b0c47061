"""The command line: `acme-telemetry COMMAND ...` or `python -m acme_telemetry COMMAND ...`.

One module per command (generate, validate, local, query, bench), each with register(sub)
and run(args) -> int; flags.py holds every flag's value type; app.py builds the parser
and dispatches. Commands import the code they drive only when they run.
"""

from acme_telemetry.cli.app import build_parser, main
from acme_telemetry.cli.errors import CliError

__all__ = ["CliError", "build_parser", "main"]
