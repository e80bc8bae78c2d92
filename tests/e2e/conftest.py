"""Fixtures of the end-to-end tests beyond the shared ones (``tests/conftest.py``)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_inherited_gateway_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads ``IDGW_CONFIG`` and ``IDGW_REDIS_URL``; one exported in the shell running
    pytest would send these gateways to another config or Redis instead of their own."""
    monkeypatch.delenv("IDGW_CONFIG", raising=False)
    monkeypatch.delenv("IDGW_REDIS_URL", raising=False)
