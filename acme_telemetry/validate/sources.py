"""Where the validator's lines come from: files (plain or `.gz`), folders and lakes, stdin.

No rule lives here: this module turns the command line's paths into (source name, lines,
in a lake folder) and nothing else.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from acme_telemetry.schema import ERROR_PREFIX, LAKE_PREFIX

STDIN_NAME = "<stdin>"


def read_lines(path: Path) -> Iterator[bytes]:
    """The raw lines of a file, gunzipped when its name ends in `.gz`."""
    if path.name.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            yield from fh
    else:
        with open(path, "rb") as fh:
            yield from fh


def expand(paths: Iterable[str | Path]) -> tuple[list[tuple[Path | None, bool]], int]:
    """Files to check as (path, in_lake_folder), path None for standard input (the string
    "-"), and the count of lake error objects.

    A folder is read recursively, files in path order, hidden files skipped; a lake root
    (a folder with `telemetry/`) is read under `telemetry/` only, and the files under its
    `errors/` are counted, not checked.

    Raises FileNotFoundError / NotADirectoryError / PermissionError for unusable paths.
    """
    files: list[tuple[Path | None, bool]] = []
    errors = 0
    for raw in paths:
        if isinstance(raw, str) and raw == "-":
            files.append((None, False))
            continue
        p = Path(raw)
        if p.is_dir():
            root = p / LAKE_PREFIX.rstrip("/")
            if root.is_dir():
                err_dir = p / ERROR_PREFIX.rstrip("/")
                errors += sum(1 for f in err_dir.rglob("*") if f.is_file()) if err_dir.is_dir() else 0
            else:
                root = p
            found: list[tuple[Path | None, bool]] = [
                (f, True) for f in sorted(root.rglob("*")) if f.is_file() and not f.name.startswith(".")
            ]
            if not found:
                raise FileNotFoundError(f"{p}: no files to check in this folder")
            files.extend(found)
        elif p.exists():
            files.append((p, False))
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return files, errors


def open_sources(files: Iterable[tuple[Path | None, bool]]) -> Iterator[tuple[str, Iterable[bytes], bool]]:
    """(source name, its lines, in a lake folder) for each expanded file, in order."""
    for path, lake in files:
        if path is None:
            yield STDIN_NAME, sys.stdin.buffer, False
        else:
            yield str(path), read_lines(path), lake
