"""A change reaches every configured vendor (the fixture itself is sound)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import uniq_email
from tests.integration.delivery_support import delivery_gateway

if TYPE_CHECKING:
    from pathlib import Path


def test_a_new_contact_reaches_every_vendor(tmp_path: Path, redis_url: str) -> None:
    adapters = ["webhook", "smooch", "gist", "groove", "crm"]
    with delivery_gateway(tmp_path, redis_url, adapters) as dg:
        contact = dg.identify(
            user_id="u1", traits={"email": uniq_email(), "phone": "+15558234312"}
        )["contact"]
        for name in adapters:
            dg.emulators[name].wait_for(1 if name != "crm" else 2)
        assert dg.emulators["webhook"].requests[0].json()["data"]["id"] == contact["id"]
        assert dg.emulators["crm"].requests[1].json()["phoneNumber"] == "+15558234312"
