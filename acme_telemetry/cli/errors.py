"""The one error type the CLI turns into a one-line message and an exit code, never a traceback."""

from __future__ import annotations


class CliError(Exception):
    """Bad input or an unusable environment; the message is shown to the user as is.

    exit_code: 2 for bad input (argparse's code for a usage error), 1 for a failed run.
    """

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code
