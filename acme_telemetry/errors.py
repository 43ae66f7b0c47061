"""Re-export of acme_telemetry.cli.errors.CliError for the modules that raise it outside
the CLI package (acme_telemetry.local.*). New code imports it from acme_telemetry.cli.errors."""

from acme_telemetry.cli.errors import CliError

__all__ = ["CliError"]
