"""Errors the CLI turns into a one-line message and a non-zero exit, never a traceback."""


class CliError(Exception):
    """Bad input or an unusable environment; the message is shown to the user as is."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
