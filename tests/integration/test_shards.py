"""Tenants on different Redis Cluster shards (SPEC §10: all keys of a tenant share one hash
tag). The conftest tenants ``quiet``, ``strict`` and ``acme`` fall in the three slot ranges of
the 3-primary test cluster, so ``make test-cluster`` runs every suite against more than one
shard; on a single server the same calls run unchanged."""

from __future__ import annotations

from typing import TYPE_CHECKING

from redis.crc import key_slot

from tests.conftest import (
    ACME_SECRET,
    CLUSTER,
    QUIET_SECRET,
    STRICT_SECRET,
    sync_redis,
    uniq,
    uniq_email,
)

if TYPE_CHECKING:
    from tests.conftest import RunningGateway

SPREAD = {"quiet": QUIET_SECRET, "strict": STRICT_SECRET, "acme": ACME_SECRET}


def test_the_test_tenants_are_on_three_different_shards(redis_url: str) -> None:
    thirds = {t: key_slot(f"idgw:{{{t}}}:outbox".encode()) * 3 // 16384 for t in SPREAD}
    assert sorted(thirds.values()) == [0, 1, 2]
    if CLUSTER:  # the cluster under test agrees: three different primaries
        with sync_redis(redis_url) as client:
            owners = {
                t: client.get_node_from_key(f"idgw:{{{t}}}:outbox").name  # type: ignore[attr-defined]
                for t in SPREAD
            }
        assert len(set(owners.values())) == 3, owners


def test_tenants_on_every_shard_write_read_and_keep_apart(gateway: RunningGateway) -> None:
    created: dict[str, str] = {}
    for tenant, secret in SPREAD.items():
        with gateway.client(secret) as api:
            body = {"user_id": uniq("sh"), "traits": {"email": uniq_email(), "account": "a1"}}
            answer = api.post("/v1/identify", json=body)
            assert answer.status_code == 201, (tenant, answer.text)
            created[tenant] = answer.json()["contact"]["id"]
            assert api.get(f"/v1/contacts/{created[tenant]}").status_code == 200
    for tenant, secret in SPREAD.items():
        with gateway.client(secret) as api:
            for other, contact in created.items():
                if other != tenant:
                    assert api.get(f"/v1/contacts/{contact}").status_code == 404
