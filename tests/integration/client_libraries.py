"""Vendors' own client libraries, run against the gateway in tests (ARCHITECTURE.md, borders):
the Python ones are dev dependencies; the JavaScript ones (``node/package.json``) are installed
from the npm registry into a cache folder the first time a test needs them, and run with node.

``IDGW_NPM_CACHE`` names the cache folder (default ``~/.cache/idgateway-tests/npm``). Where node
is absent, the tests that need it are skipped, saying so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).resolve().parent / "node"


@dataclass(frozen=True)
class NodeLibraries:
    node: str
    modules: Path

    def run(self, script: str, config: dict[str, Any]) -> Any:
        """Run ``node/<script>`` with ``config`` (JSON, its one argument); its JSON output."""
        done = subprocess.run(
            [self.node, str(NODE_DIR / script), json.dumps(config)],
            env={**os.environ, "NODE_PATH": str(self.modules)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{script} failed:\n{done.stderr}\n{done.stdout}"
        return json.loads(done.stdout)


def _cache() -> Path:
    given = os.environ.get("IDGW_NPM_CACHE")
    if given:
        return Path(given)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "idgateway-tests" / "npm"


def node_libraries() -> NodeLibraries:
    """The JavaScript client libraries, installed (once per ``package.json``) with npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip(
            "node and npm are not installed: the JavaScript client libraries "
            "(@segment/analytics-node, smooch-core) cannot run here"
        )
    cache = _cache()
    cache.mkdir(parents=True, exist_ok=True)
    manifest = (NODE_DIR / "package.json").read_text()
    stamp = cache / ".installed"
    if not (stamp.exists() and stamp.read_text() == manifest):
        (cache / "package.json").write_text(manifest)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=cache,
            check=True,
            timeout=600,
        )
        stamp.write_text(manifest)
    return NodeLibraries(node, cache / "node_modules")
