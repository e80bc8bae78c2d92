"""Fixtures of the integration tests beyond the shared ones (``tests/conftest.py``)."""

from __future__ import annotations

import pytest

from tests.integration.client_libraries import NodeLibraries, node_libraries


@pytest.fixture(scope="session")
def node() -> NodeLibraries:
    """The JavaScript client libraries (skipped, saying why, where node is absent)."""
    return node_libraries()
