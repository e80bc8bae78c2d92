"""Shared fixtures: a real Redis-compatible server and a real gateway process.

- ``redis_url``: one of, by the first variable set
  - ``REDIS_CLUSTER_URL``: the seed nodes (comma-separated) of a disposable Redis Cluster;
  - ``IDGW_TEST_CLUSTER=1``: a local 3-primary / 3-replica cluster started for the session
    (:class:`idgateway.store._devcluster.DevCluster`, ``make test-cluster``);
  - ``REDIS_URL``: a disposable server (tests write to it);
  - otherwise an embedded Valkey started for the session.
  In both cluster modes :data:`CLUSTER` is true: write a gateway's ``[redis]`` table with
  :func:`redis_toml` and make clients with :func:`sync_redis` / :func:`open_store`, so the
  same tests run on both kinds of deployment.
- ``gateway``: ``python -m idgateway serve`` as a subprocess on a free port, configured with
  the tenants written by :func:`write_config`, talking to ``redis_url``.
- ``api``: an ``httpx.Client`` for that gateway with tenant ``acme``'s secret key.

Tests keep out of each other's way with unique identifying values (:func:`uniq`) rather
than by flushing Redis, so they also run against a shared ``REDIS_URL``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx
import pytest
import redis

from idgateway.store import EmbeddedValkey, Store, seed_urls

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# The suite runs against a Redis Cluster (see the module docstring).
CLUSTER = bool(os.environ.get("REDIS_CLUSTER_URL")) or os.environ.get("IDGW_TEST_CLUSTER") == "1"

ACME_SECRET = "sk_test_acme_0123456789abcdef"
ACME_PUBLISHABLE = "pk_test_acme_0123456789abcdef"
ACME_WRITE = "wk_test_acme_0123456789abcdef"  # the Segment-compatible source (SPEC §5.8)
ACME_WRITE_SLOW = "wk_test_acme_slow_0123456789abcdef"  # a write key of 2 requests a minute
OTHER_SECRET = "sk_test_other_0123456789abcdef"
STRICT_SECRET = "sk_test_strict_0123456789abcdef"
QUIET_SECRET = "sk_test_quiet_0123456789abcdef"
# key_sha256 of this one is in the config, not the key itself
HASHED_SECRET = "sk_test_hashed_0123456789abcdef"
VERIFIED_SECRET = "sk_test_verified_0123456789abcdef"
VERIFIED_PUBLISHABLE = "pk_test_verified_0123456789abcdef"
VERIFIED_IDENTITY_SECRET = "identity-secret-for-tests"
ACME_ORIGIN = "https://app.acme.test"
VERIFIED_ORIGIN = "https://app.verified.test"
SMOOCH_APP_ID = "5963c0d619a30a2e00de36b8"
GROOVE_TOKEN = "groove-token-acme-0123456789"
MAX_BODY = 32768

GATEWAY_TOML = """
[server]
host = "127.0.0.1"
port = {port}
max_body_bytes = {max_body}

{redis_table}
[logging]
format = "json"
level = "info"

[tenants]
dir = "tenants"
"""

ACME_TOML = """
id = "acme"
name = "Acme Inc."
unknown_fields = "infer"
default_region = "US"
session_ttl = "1h"
allowed_origins = ["{acme_origin}"]
blocked_identifiers = ["test@example\\\\.com", "nobody-.*"]

[[api_keys]]
name = "backend"
kind = "secret"
key = "{acme_secret}"

[[api_keys]]
name = "hashed"
kind = "secret"
key_sha256 = "{hashed_sha}"

[[api_keys]]
name = "browser"
kind = "publishable"
key = "{acme_publishable}"

[[api_keys]]
name = "segment"
kind = "write"
key = "{acme_write}"

[[api_keys]]
name = "segment-slow"
kind = "write"
key = "{acme_write_slow}"
rate_limit = "2/m"

[[fields.contact]]
key = "plan"
type = "dropdown"
options = ["Free", "Support", "Marketing", "All in One"]

[[fields.contact]]
key = "customer_number"
type = "text"
unique = true

[[fields.contact]]
key = "nickname"
type = "text"
max_length = 10

[[fields.contact]]
key = "bio"
type = "long_text"

[[fields.contact]]
key = "score"
type = "number"

[[fields.contact]]
key = "vip"
type = "boolean"

[[fields.contact]]
key = "dob"
type = "date"

[[fields.contact]]
key = "last_seen"
type = "datetime"

[[fields.contact]]
key = "work_email"
type = "email"

[[fields.contact]]
key = "cell"
type = "phone"

[[fields.contact]]
key = "blog_url"
type = "link"

[[fields.contact]]
key = "home_address"
type = "address"

[[fields.contact]]
key = "labels"
type = "tags"

[[fields.contact]]
key = "role"
type = "text"

[[fields.company]]
key = "tier"
type = "text"

[[fields.company]]
key = "vat"
type = "text"
unique = true

[compat]
smooch_app_id = "{smooch_app_id}"
groove_api_token = "{groove_token}"
"""

VERIFIED_TOML = """
id = "verified"
allowed_origins = ["{verified_origin}"]

[[api_keys]]
name = "backend"
kind = "secret"
key = "{verified_secret}"

[[api_keys]]
name = "browser"
kind = "publishable"
key = "{verified_publishable}"

[identity]
verification = "required"
secret = "{verified_identity_secret}"

[[fields.contact]]
key = "customer_number"
type = "text"
unique = true

[[fields.contact]]
key = "plan"
type = "text"

[[fields.contact]]
key = "home_address"
type = "address"

[[fields.company]]
key = "vat"
type = "text"
unique = true
"""

OTHER_TOML = """
id = "other"
[[api_keys]]
name = "backend"
kind = "secret"
key = "{other_secret}"
"""

STRICT_TOML = """
id = "strict"
unknown_fields = "reject"
[[api_keys]]
name = "backend"
kind = "secret"
key = "{strict_secret}"

[[fields.contact]]
key = "account"
type = "text"
required = true
"""

QUIET_TOML = """
id = "quiet"
unknown_fields = "discard"
[[api_keys]]
name = "backend"
kind = "secret"
key = "{quiet_secret}"
"""


def redis_toml(url: str) -> str:
    """The ``[redis]`` table of a test gateway talking to ``url`` (a cluster's seeds in the
    cluster modes)."""
    table = f'[redis]\nurl = "{url}"\n'
    return table + ("cluster = true\n" if CLUSTER else "")


def sync_redis(url: str, **options: object) -> redis.Redis:
    """A synchronous client of the test Redis, a cluster client in the cluster modes (typed
    as ``redis.Redis``: the commands the tests use are the same)."""
    if not CLUSTER:
        return redis.Redis.from_url(url, **options)  # type: ignore[arg-type]
    from urllib.parse import urlsplit

    from redis.cluster import ClusterNode

    seeds = seed_urls(url)
    nodes = [ClusterNode(urlsplit(s).hostname, urlsplit(s).port) for s in seeds]
    client: redis.Redis = redis.RedisCluster(startup_nodes=nodes, **options)  # type: ignore[assignment,arg-type]
    return client


def node_url(url: str, key: str) -> str:
    """A plain-client URL of the server holding ``key``: the slot's primary on a cluster (for
    commands about one server, such as MONITOR)."""
    if not CLUSTER:
        return url
    with sync_redis(url) as client:
        node = client.get_node_from_key(key)  # type: ignore[attr-defined]
        return f"redis://{node.host}:{node.port}"


async def open_store(url: str) -> Store:
    """The gateway's own store on the test Redis (a cluster's in the cluster modes)."""
    return await Store.open(url, cluster=CLUSTER)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def uniq(prefix: str = "u") -> str:
    """A value no other test uses."""
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def uniq_email() -> str:
    return f"{uniq('p')}@example.org"


def write_config(folder: Path, redis_url: str, port: int) -> Path:
    import hashlib

    tenants = folder / "tenants"
    tenants.mkdir(parents=True, exist_ok=True)
    values = {
        "acme_secret": ACME_SECRET,
        "acme_publishable": ACME_PUBLISHABLE,
        "acme_write": ACME_WRITE,
        "acme_write_slow": ACME_WRITE_SLOW,
        "other_secret": OTHER_SECRET,
        "strict_secret": STRICT_SECRET,
        "quiet_secret": QUIET_SECRET,
        "hashed_sha": hashlib.sha256(HASHED_SECRET.encode()).hexdigest(),
        "acme_origin": ACME_ORIGIN,
        "smooch_app_id": SMOOCH_APP_ID,
        "groove_token": GROOVE_TOKEN,
        "verified_secret": VERIFIED_SECRET,
        "verified_publishable": VERIFIED_PUBLISHABLE,
        "verified_identity_secret": VERIFIED_IDENTITY_SECRET,
        "verified_origin": VERIFIED_ORIGIN,
    }
    (tenants / "acme.toml").write_text(ACME_TOML.format(**values))
    (tenants / "other.toml").write_text(OTHER_TOML.format(**values))
    (tenants / "strict.toml").write_text(STRICT_TOML.format(**values))
    (tenants / "quiet.toml").write_text(QUIET_TOML.format(**values))
    (tenants / "verified.toml").write_text(VERIFIED_TOML.format(**values))
    gateway = folder / "gateway.toml"
    gateway.write_text(
        GATEWAY_TOML.format(port=port, redis_table=redis_toml(redis_url), max_body=MAX_BODY)
    )
    return gateway


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    given = os.environ.get("REDIS_CLUSTER_URL")
    if given:
        yield given
        return
    if CLUSTER:
        from idgateway.store._devcluster import DevCluster

        with DevCluster() as cluster:
            yield cluster.url
        return
    given = os.environ.get("REDIS_URL")
    if given:
        yield given
        return
    folder = tempfile.mkdtemp(prefix="idgw-test-valkey-")
    server = EmbeddedValkey(folder, "everysec")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = sync_redis(redis_url)
    yield client
    client.close()


@dataclass
class RunningGateway:
    url: str
    config: Path
    log: Path
    process: subprocess.Popen[bytes]

    def client(self, key: str | None = ACME_SECRET, **headers: str) -> httpx.Client:
        all_headers = dict(headers)
        if key is not None:
            all_headers["Authorization"] = f"Bearer {key}"
        return httpx.Client(base_url=self.url, headers=all_headers, timeout=10)


def start_gateway(config: Path, port: int, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "idgateway", "serve", "--config", str(config), *extra],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gateway not ready after {timeout}s:\n{log.read_text()}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def gateway(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    folder = tmp_path_factory.mktemp("gateway")
    port = free_port()
    config = write_config(folder, redis_url, port)
    log = folder / "gateway.log"
    process = start_gateway(config, port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, log)
        yield RunningGateway(url=url, config=config, log=log, process=process)
    finally:
        stop_process(process)


@pytest.fixture
def api(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with gateway.client() as client:
        yield client
