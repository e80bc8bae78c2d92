"""Fixtures of the integration tests beyond the shared ones (``tests/conftest.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import open_store
from tests.integration.client_libraries import NodeLibraries, node_libraries

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from idgateway.store import Store


@pytest.fixture(scope="session")
def node() -> NodeLibraries:
    """The JavaScript client libraries (skipped, saying why, where node is absent)."""
    return node_libraries()


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[Store]:
    """The gateway's own store on the test Redis (a cluster's in the cluster modes), closed
    after the test."""
    opened = await open_store(redis_url)
    yield opened
    await opened.close()
