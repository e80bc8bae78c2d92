"""A change reaches every configured vendor (the fixture itself is sound)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import uniq_email
from tests.integration.delivery_support import delivery_gateway

if TYPE_CHECKING:
    from pathlib import Path


def test_a_new_contact_reaches_every_vendor(tmp_path: Path, redis_url: str) -> None:
    adapters = ["webhook", "smooch", "sunshine", "gist", "groove", "pipedrive"]
    with delivery_gateway(tmp_path, redis_url, adapters) as dg:
        contact = dg.identify(
            user_id="u1", traits={"email": uniq_email(), "phone": "+15558234312"}
        )["contact"]
        for name in adapters:
            dg.emulators[name].wait_for(2 if name in ("pipedrive", "smooch") else 1)
        assert dg.emulators["webhook"].requests[0].json()["data"]["id"] == contact["id"]
        # A slow run may time a request out and send it again (at least once), so
        # the person's creation is found by what it is, not by its position.
        created = dg.emulators["pipedrive"].wait_for_one("POST", "/api/v1/persons").json()
        assert created["phone"] == [{"value": "+15558234312", "primary": True}]
