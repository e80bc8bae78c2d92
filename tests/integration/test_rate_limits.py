"""Rate limits (SPEC §5.1, §8 ``rate_limit``), shared by every gateway process through Redis.

Two real gateway processes serve one tenant whose keys have small limits; the limits hold for
their sum. A limited call answers 429 with ``Retry-After`` and the IETF draft's
``RateLimit-Policy`` / ``RateLimit`` headers, and writes nothing. A flood of bad keys from one
address is limited too, and every refusal is counted in ``/metrics`` by reason.

Each test uses its own key (or session, or client address): the limits live in Redis and
outlast a test.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.conftest import (
    free_port,
    start_gateway,
    stop_process,
    uniq,
    uniq_email,
    wait_ready,
    write_config,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

ORIGIN = "https://app.limited.test"
PUBLISHABLE = "pk_test_limited_0123456789abcdef"
SECRETS = {name: f"sk_test_limited_{name}_0123456789abcdef" for name in ("k1", "k2", "k3")}
AUDIT = "sk_test_limited_audit_0123456789abcdef"  # reads results back, at the default rate
QUOTA = 10  # per second, burst as large
LIMITED_TOML = f"""
id = "limited"
allowed_origins = ["{ORIGIN}"]

[[api_keys]]
name = "browser"
kind = "publishable"
key = "{PUBLISHABLE}"
rate_limit = "3/s"

[[api_keys]]
name = "audit"
kind = "secret"
key = "{AUDIT}"
""" + "".join(
    f"""
[[api_keys]]
name = "{name}"
kind = "secret"
key = "{key}"
rate_limit = "{QUOTA}/s"
"""
    for name, key in SECRETS.items()
)


class Gateways:
    def __init__(self, urls: list[str], folder: Path) -> None:
        self.urls = urls
        self.folder = folder

    def client(self, index: int = 0, **headers: str) -> httpx.Client:
        return httpx.Client(base_url=self.urls[index], headers=headers, timeout=10)


@pytest.fixture(scope="module")
def gateways(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateways]:
    """Two gateway processes on one config and one Redis; unknown keys limited to 5/s."""
    folder = tmp_path_factory.mktemp("limits")
    ports = [free_port(), free_port()]
    config = write_config(folder, redis_url, ports[0])
    (folder / "tenants" / "limited.toml").write_text(LIMITED_TOML)
    text = config.read_text().replace("[server]\n", '[server]\nunknown_key_rate_limit = "5/s"\n')
    config.write_text(text)
    processes = []
    try:
        for port in ports:
            log = folder / f"gateway-{port}.log"
            process = start_gateway(config, port, log, "--port", str(port), "--no-worker")
            processes.append(process)
            wait_ready(f"http://127.0.0.1:{port}", process, log)
        yield Gateways([f"http://127.0.0.1:{p}" for p in ports], folder)
    finally:
        for process in processes:
            stop_process(process)


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SECRETS[name]}"}


def assert_limited(response: httpx.Response, limit: str, quota: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "/problems/rate-limited"
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-policy"] == f'"{limit}";q={quota};w=1'
    assert response.headers["ratelimit"].startswith(f'"{limit}";r=0;t=')


def test_over_a_keys_rate_a_write_is_429_and_writes_nothing(gateways: Gateways) -> None:
    emails = [uniq_email() for _ in range(3 * QUOTA)]
    with gateways.client(**bearer("k1")) as api:
        answers = [api.post("/v1/identify", json={"traits": {"email": e}}) for e in emails]
        limited = [(e, r) for e, r in zip(emails, answers, strict=True) if r.status_code == 429]
        assert limited, "no request was limited"
        assert {r.status_code for r in answers} <= {201, 429}
        assert_limited(limited[0][1], "key", QUOTA)
    with gateways.client(Authorization=f"Bearer {AUDIT}") as audit:
        for email, _ in limited:
            assert audit.get("/v1/contacts", params={"email": email}).status_code == 404


def _hammer(url: str, headers: dict[str, str], start: float, until: float, out: list[int]) -> None:
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        client.get("/healthz")  # connected before the window opens
        time.sleep(max(0.0, start - time.monotonic()))
        while time.monotonic() < until:
            response = client.post("/v1/identify", json={"traits": {"email": uniq_email()}})
            out.append(response.status_code)


def test_two_processes_share_one_limit(gateways: Gateways) -> None:
    """From idle, the 2xx of both processes together, over (a little under) one second, stay
    within the key's rate plus its burst (10 + 10), however the requests are spread over the
    processes. The window is 0.95 s of sending so that requests still in flight at its end
    cannot be counted against a second that already ended on the server."""
    results: list[list[int]] = [[], [], [], []]
    start = time.monotonic() + 0.3
    until = start + 0.95
    threads = [
        threading.Thread(
            target=_hammer, args=(gateways.urls[i % 2], bearer("k2"), start, until, out)
        )
        for i, out in enumerate(results)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = [Counter(out) for out in results]
    ok = sum(c[201] for c in counts)
    per_process = [counts[0][201] + counts[2][201], counts[1][201] + counts[3][201]]
    assert ok <= QUOTA + QUOTA, f"{ok} accepted in a second: {counts}"
    assert ok >= QUOTA, f"only {ok} accepted: {counts}"
    assert all(n > 0 for n in per_process), per_process  # both processes served some
    assert sum(c[429] for c in counts) > 0


def test_a_publishable_key_is_limited_per_session(gateways: Gateways) -> None:
    headers = {"X-Idgw-Key": PUBLISHABLE, "Origin": ORIGIN}
    with gateways.client(**headers) as browser:
        sid = browser.post("/v1/sessions").json()["id"]
        other = browser.post("/v1/sessions").json()["id"]
        answers = [
            browser.post(
                f"/v1/sessions/{sid}/calls",
                json={"calls": [{"op": "setContact", "properties": {"contact_role": str(i)}}]},
            )
            for i in range(10)
        ]
        statuses = Counter(r.status_code for r in answers)
        assert statuses[429] > 0 and statuses[200] <= 3 + 1, statuses
        assert_limited(next(r for r in answers if r.status_code == 429), "session", 3)
        # The CORS headers let the browser read the problem and its Retry-After.
        limited = next(r for r in answers if r.status_code == 429)
        assert limited.headers["access-control-allow-origin"] == ORIGIN
        assert "retry-after" in limited.headers["access-control-expose-headers"].lower()
        # Another session from the same address is not held back by the first one's limit.
        fresh = browser.post(
            f"/v1/sessions/{other}/calls",
            json={"calls": [{"op": "setContact", "properties": {"contact_role": "x"}}]},
        )
        assert fresh.status_code == 200, fresh.text


_octets = iter(range(50, 250))


def uniq_octet() -> int:
    """A loopback source address no other test uses (127.0.0.0/8 is all local)."""
    return next(_octets)


def _refusals(url: str) -> dict[tuple[str, str], float]:
    found: dict[tuple[str, str], float] = {}
    text = httpx.get(f"{url}/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith("idgw_refusals_total{"):
            labels = dict(
                part.split("=", 1)
                for part in line[line.index("{") + 1 : line.index("}")].split(",")
            )
            key = (labels["status"].strip('"'), labels["reason"].strip('"'))
            found[key] = found.get(key, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


def test_a_flood_of_bad_keys_is_limited_and_counted(gateways: Gateways) -> None:
    """Unknown keys are limited per client address (here 5/s): from one address, guesses
    get 429 after the first few, and both kinds of refusal show in /metrics."""
    address = f"127.0.0.{uniq_octet()}"
    before = _refusals(gateways.urls[0])
    transport = httpx.HTTPTransport(local_address=address)
    statuses: Counter[int] = Counter()
    with httpx.Client(base_url=gateways.urls[0], transport=transport, timeout=10) as guesser:
        for i in range(40):
            key = f"sk_guess_{uniq('')}_{i}"
            response = guesser.get(
                "/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1",
                headers={"Authorization": f"Bearer {key}"},
            )
            statuses[response.status_code] += 1
    assert statuses[401] >= 5 and statuses[429] >= 20, statuses
    assert set(statuses) <= {401, 429}
    after = _refusals(gateways.urls[0])
    grew = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    assert grew.get(("401", "unknown_key"), 0) == statuses[401]
    assert grew.get(("429", "rate_limit_address"), 0) == statuses[429]
    # Another address is not affected.
    with gateways.client(Authorization="Bearer sk_guess_other_0123456789") as other:
        assert other.get("/v1/contacts/c_01JDQ8Z6X4M2V5B7N9P3R6T8W1").status_code == 401


def test_reads_spend_the_limit_too(gateways: Gateways) -> None:
    with gateways.client(**bearer("k3")) as api:
        statuses = Counter(
            api.get("/v1/contacts", params={"email": uniq_email()}).status_code
            for _ in range(3 * QUOTA)
        )
    assert statuses[429] > 0 and statuses[404] >= QUOTA, statuses


def test_limits_are_per_key(gateways: Gateways) -> None:
    """One key over its rate does not hold another key of the tenant back."""
    with gateways.client(**bearer("k3")) as spent:
        for _ in range(3 * QUOTA):
            spent.get("/v1/contacts", params={"email": uniq_email()})
    with gateways.client(1, **bearer("k1")) as fresh:
        time.sleep(1.2)  # k1 is idle again after its own test
        response = fresh.post("/v1/identify", json={"traits": {"email": uniq_email()}})
    assert response.status_code == 201, response.text
