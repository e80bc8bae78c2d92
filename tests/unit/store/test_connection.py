"""``redis.url`` seeds, the keys the cluster client routes by (function calls, stream reads),
and the ``[redis]`` checks of the config (no server needed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from idgateway.settings import ConfigError, load_settings
from idgateway.store import connect, describe, seed_urls
from idgateway.store._connection import _KeysParser

if TYPE_CHECKING:
    from pathlib import Path


def test_seeds_are_the_comma_separated_urls_in_order() -> None:
    url = " redis://a:7000 ,redis://b:7001,, rediss://c:7002"
    assert seed_urls(url) == ["redis://a:7000", "redis://b:7001", "rediss://c:7002"]


def test_a_described_url_never_shows_a_password() -> None:
    text = describe("redis://user:s3cret@10.0.0.1:7000,redis://:other@10.0.0.2,unix:///run/v.sock")
    assert text == "10.0.0.1:7000, 10.0.0.2:6379, /run/v.sock"
    assert "s3cret" not in text and "other" not in text


async def test_every_seed_is_a_startup_node_of_the_cluster_client() -> None:
    client = connect("redis://127.0.0.1:7000,redis://127.0.0.2:7001", cluster=True)
    try:
        assert isinstance(client, RedisCluster)
        names = set(client.nodes_manager.startup_nodes)
        assert names == {"127.0.0.1:7000", "127.0.0.2:7001"}
    finally:
        await client.aclose()


async def test_a_single_server_url_gives_a_plain_client() -> None:
    client = connect("redis://127.0.0.1:7000/0")
    assert isinstance(client, Redis)
    await client.aclose()


@pytest.mark.parametrize(
    ("url", "cluster", "message"),
    [
        ("redis://a:1,redis://b:2", False, "need redis.cluster = true"),
        ("unix:///run/valkey.sock", True, "must be redis:// or rediss://"),
        ("", False, "empty"),
    ],
)
def test_connect_refuses_a_url_of_the_wrong_shape(url: str, cluster: bool, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        connect(url, cluster=cluster)


@pytest.mark.parametrize(
    "args",
    [
        (
            "XREADGROUP",
            b"GROUP",
            "hook",
            "c1",
            b"COUNT",
            "10",
            b"BLOCK",
            "1000",
            b"STREAMS",
            "k",
            ">",
        ),
        # a group and a consumer named like the keyword do not confuse it
        ("XREADGROUP", b"GROUP", "STREAMS", "STREAMS", b"STREAMS", "k", ">"),
        ("XREAD", b"COUNT", "5", b"STREAMS", "k", "0-0"),
    ],
)
async def test_stream_read_keys_are_found_without_asking_a_server(args: tuple[object, ...]) -> None:
    """F2: redis-py asked one fixed node (COMMAND GETKEYS); this parser has none to ask."""
    assert await _KeysParser().get_keys(*args) == ("k",)


async def test_function_call_keys_are_found_without_asking_a_server() -> None:
    """Every FCALL of the gateway (the hot path) would otherwise ask that one node too."""
    args = ("FCALL", "idgw_upsert_0123", 1, "idgw:{acme}:", b"{}")
    assert await _KeysParser().get_keys(*args) == ("idgw:{acme}:",)
    assert await _KeysParser().get_keys("FCALL_RO", "f", "2", "k1", "k2", "arg") == ("k1", "k2")


async def test_several_streams_of_one_read_are_all_keys() -> None:
    args = ("XREAD", b"STREAMS", "k1", "k2", "0-0", "0-0")
    assert await _KeysParser().get_keys(*args) == ("k1", "k2")


def _gateway(tmp_path: Path, redis_table: str) -> Path:
    (tmp_path / "tenants").mkdir(exist_ok=True)
    (tmp_path / "tenants" / "acme.toml").write_text('id = "acme"\n')
    config = tmp_path / "gateway.toml"
    config.write_text(f'{redis_table}\n[tenants]\ndir = "tenants"\n')
    return config


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('[redis]\nurl = "redis://a:1,redis://b:2"', "needs `cluster = true`"),
        ("[redis]\ncluster = true", "needs the seed nodes in `url`"),
        ("[redis]\nwait_replicas = 1", "the embedded Valkey has none"),
        ('[redis]\nurl = "redis://a:1"\nwait_replicas = 2', "$.redis.wait_replicas"),
    ],
)
def test_redis_settings_that_cannot_work_are_config_errors(
    tmp_path: Path, table: str, message: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(_gateway(tmp_path, table))
    assert any(message in str(issue) for issue in raised.value.issues), raised.value.issues


def test_cluster_seeds_and_wait_replicas_are_accepted(tmp_path: Path) -> None:
    table = '[redis]\nurl = "redis://a:7000,redis://b:7001"\ncluster = true\nwait_replicas = 1'
    redis = load_settings(_gateway(tmp_path, table)).gateway.redis
    assert (redis.cluster, redis.wait_replicas) == (True, 1)
    assert seed_urls(redis.url) == ["redis://a:7000", "redis://b:7001"]
