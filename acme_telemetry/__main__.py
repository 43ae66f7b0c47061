"""`python -m acme_telemetry COMMAND ...`: the same CLI as the `acme-telemetry` console script."""

import sys

from acme_telemetry.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m acme_telemetry"))
