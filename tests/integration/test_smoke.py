"""The gateway process starts against the test Redis and answers."""

from __future__ import annotations

from tests.conftest import RunningGateway, uniq_email


def test_readyz_and_identify_roundtrip(gateway: RunningGateway) -> None:
    with gateway.client() as api:
        assert api.get("/readyz").json() == {"status": "ok"}
        email = uniq_email()
        created = api.post("/v1/identify", json={"traits": {"email": email}})
        assert created.status_code == 201
        contact_id = created.json()["contact"]["id"]
        assert api.get(f"/v1/contacts/{contact_id}").json()["email"] == email
