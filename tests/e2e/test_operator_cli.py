"""The operator commands as real subprocesses (SPEC §9): ``import``, ``export``, ``fields``.

- ``import`` killed with SIGKILL mid-file, then run again with ``--resume``, imports every row
  exactly once: the checkpoint's counts add up to the file's rows with no row counted
  ``unchanged`` (a row applied twice would be), the export holds each user id once, and the
  rejects file names each bad line once.
- With ``redis.url = ""`` every command works whether ``serve`` runs (it uses the server's
  socket) or not (it starts the embedded Valkey itself, holding the data dir's lock, and
  stops it after: no Valkey is left running).
- ``export`` writes every company and contact once, each exactly as ``GET`` answers it.
- ``fields reset`` refuses while a record holds the field and forgets it once none does; the
  next value then fixes the type again.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import free_port, uniq, write_config
from tests.e2e.test_cli import (
    client,
    data_dir,  # noqa: F401 (fixture)
    embedded_config,
    run_cli,
    serving,
    valkey_pids,
    wait_no_valkey,
)

if TYPE_CHECKING:
    from pathlib import Path

    import redis

pytestmark = pytest.mark.e2e


def import_id(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.sha256(fh.read(64 * 1024)).hexdigest()[:32]


def exported(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


# --- import: killed mid-file, resumed ---------------------------------------------------------


def test_an_import_killed_mid_file_and_resumed_imports_every_row_once(
    tmp_path: Path, redis_url: str, redis_client: redis.Redis
) -> None:
    config = write_config(tmp_path / "cfg", redis_url, free_port())
    tenant = "acme"
    u = uniq("kill")
    rows = 12_000
    bad = set(range(997, rows + 1, 997))  # lines that are not JSON
    path = tmp_path / "people.ndjson"
    with path.open("w") as out:
        for line in range(1, rows + 1):
            if line in bad:
                out.write(f"broken {line}\n")
            else:
                body = {"user_id": f"{u}-{line}", "traits": {"email": f"{u}-{line}@example.org"}}
                out.write(json.dumps(body) + "\n")
    checkpoint = f"idgw:{{{tenant}}}:import:{import_id(path)}"
    command = [sys.executable, "-m", "idgateway", "import", str(path), "--config", str(config)]
    command += ["--tenant", tenant, "--batch", "50"]

    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and first.poll() is None:
            if int(redis_client.hget(checkpoint, "rows") or 0) >= 1000:
                break
            time.sleep(0.005)
        first.send_signal(signal.SIGKILL)
    finally:
        first.wait(timeout=30)
    at_kill = {k.decode(): v.decode() for k, v in redis_client.hgetall(checkpoint).items()}
    assert at_kill["done"] == "0", "the import finished before the kill: nothing was proved"
    assert 1000 <= int(at_kill["rows"]) < rows

    second = subprocess.run(
        [*command, "--resume"], capture_output=True, text=True, timeout=300, check=False
    )

    assert second.returncode == 2, second.stdout + second.stderr  # 2: some rows were refused
    assert f"resumed after line {int(at_kill['line']):,}" in second.stdout
    final = {k.decode(): v.decode() for k, v in redis_client.hgetall(checkpoint).items()}
    assert final["done"] == "1"
    assert int(final["rows"]) == rows
    assert int(final["created"]) == rows - len(bad)
    assert int(final["unchanged"]) == 0 and int(final["updated"]) == 0
    assert int(final["rejected"]) == len(bad)
    rejects = path.with_name(path.name + ".rejects.ndjson").read_text().splitlines()
    assert [json.loads(r)["line"] for r in rejects] == sorted(bad)
    dump = run_cli("export", "--config", str(config), "--tenant", tenant, cwd=tmp_path)
    assert dump.returncode == 0, dump.stderr
    ids = [c["external_id"] for c in exported(dump.stdout) if c["id"].startswith("c_")]
    mine = [i for i in ids if i and i.startswith(f"{u}-")]
    assert len(mine) == len(set(mine)) == rows - len(bad)


# --- with and without a running serve ---------------------------------------------------------


def test_the_commands_work_with_and_without_a_running_serve(
    tmp_path: Path,
    data_dir: Path,  # noqa: F811
) -> None:
    port = free_port()
    config = embedded_config(tmp_path, data_dir, port)
    u = uniq("modes")
    people = tmp_path / "people.csv"
    people.write_text(
        "user_id,email,visits,company.domain\n"
        f"{u}-1,{u}-1@example.org,3,{u}.example.com\n"
        f"{u}-2,{u}-2@example.org,4,\n"
    )

    # no serve: the command starts the embedded server itself and stops it after
    alone = run_cli(
        "import", str(people), "--config", str(config), "--tenant", "acme", cwd=tmp_path
    )
    assert alone.returncode == 0, alone.stdout + alone.stderr
    assert "created 2" in alone.stdout
    assert wait_no_valkey(data_dir) == set()

    with serving(config, port, tmp_path / "serve.log"):
        pids = valkey_pids(data_dir)
        # serve runs: the commands use its server (no second one on the same data dir)
        dump = run_cli("export", "--config", str(config), "--tenant", "acme", cwd=tmp_path)
        assert dump.returncode == 0, dump.stderr
        listing = run_cli(
            "fields", "list", "--config", str(config), "--tenant", "acme", cwd=tmp_path
        )
        assert listing.returncode == 0, listing.stderr
        assert valkey_pids(data_dir) == pids
        records = exported(dump.stdout)
        with client(port) as api:
            for record in records:
                kind = "companies" if record["id"].startswith("co_") else "contacts"
                assert api.get(f"/v1/{kind}/{record['id']}").json() == record
        assert {r.get("external_id") for r in records} >= {f"{u}-1", f"{u}-2"}
        assert records[0]["id"].startswith("co_")  # companies first
        assert all(r["id"].startswith("c_") for r in records[1:])
        assert "contact  visits  number" in listing.stdout

    # serve stopped: again on a server of its own
    reset = run_cli(
        "fields", "reset", "visits", "--config", str(config), "--tenant", "acme", cwd=tmp_path
    )
    assert reset.returncode == 1
    assert "is held by c_" in reset.stderr
    assert wait_no_valkey(data_dir) == set()


# --- export -----------------------------------------------------------------------------------


def test_export_writes_every_record_once_as_the_api_answers_it(
    tmp_path: Path, redis_url: str
) -> None:
    """A tenant of its own, so the export holds exactly what the test wrote."""
    port = free_port()
    folder = tmp_path / "cfg"
    config = write_config(folder, redis_url, port)
    tenant = uniq("exp")
    secret = f"sk_test_{tenant}_0123456789"
    (folder / "tenants" / "exp.toml").write_text(
        f'id = "{tenant}"\n[[api_keys]]\nname = "b"\nkind = "secret"\nkey = "{secret}"\n'
    )
    with serving(config, port, tmp_path / "serve.log"), client(port) as api:
        api.headers["Authorization"] = f"Bearer {secret}"
        made: dict[str, dict[str, Any]] = {}
        companies: set[str] = set()
        for i in range(600):  # more than one page
            body: dict[str, Any] = {
                "user_id": f"e{i}",
                "traits": {"n": i, "tags": ["a", f"t{i % 3}"]},
            }
            if i % 100 == 0:
                body["company"] = {"domain": f"d{i}.example.com", "name": f"D{i}"}
            answer = api.post("/v1/identify", json=body).json()
            made[answer["contact"]["id"]] = answer["contact"]
            companies.update(answer["contact"]["company_ids"])
        api.delete(f"/v1/contacts/{next(iter(made))}")  # an erased contact is not exported
        expected = {}
        for contact_id in list(made)[1:]:
            expected[contact_id] = api.get(f"/v1/contacts/{contact_id}").json()
        for company_id in companies:  # the erased contact's company stays
            expected[company_id] = api.get(f"/v1/companies/{company_id}").json()

        out = tmp_path / "all.ndjson"
        result = run_cli(
            "export", "--config", str(config), "--tenant", tenant, "--out", str(out), cwd=tmp_path
        )

    assert result.returncode == 0, result.stderr
    assert "exported 6 companies and 599 contacts" in result.stderr
    records = exported(out.read_text())
    assert len(records) == len(expected) == 605
    assert {r["id"]: r for r in records} == expected
    kinds = [r["id"].startswith("co_") for r in records]
    assert kinds == sorted(kinds, reverse=True)  # companies first
    assert not (tmp_path / "all.ndjson.partial").exists()


def test_export_to_a_place_it_cannot_write_says_so(tmp_path: Path, redis_url: str) -> None:
    """Not "Redis does not answer": the output is what failed (a missing folder; a standard
    output on /dev/full, whose every write fails with ENOSPC)."""
    config = write_config(tmp_path / "cfg", redis_url, free_port())
    row = tmp_path / "one.ndjson"
    row.write_text(json.dumps({"user_id": uniq("full"), "traits": {"email": "f@example.org"}}))
    imported = run_cli(
        "import", str(row), "--config", str(config), "--tenant", "acme", cwd=tmp_path
    )
    assert imported.returncode == 0, imported.stderr
    missing = tmp_path / "no-such-folder" / "all.ndjson"
    result = run_cli(
        "export", "--config", str(config), "--tenant", "acme", "--out", str(missing), cwd=tmp_path
    )
    assert result.returncode == 1, result.stderr
    assert f"cannot write {missing}" in result.stderr, result.stderr
    with open("/dev/full", "wb") as full:  # noqa: PTH123
        result = subprocess.run(
            [sys.executable, "-m", "idgateway", "export", "--config", str(config), "--tenant",
             "acme"],
            cwd=tmp_path, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "standard output" in result.stderr and "No space left" in result.stderr, result.stderr
    assert "Redis does not answer" not in result.stderr
    assert "Traceback" not in result.stderr


# --- fields -----------------------------------------------------------------------------------


def test_fields_reset_only_once_no_record_holds_the_field(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    folder = tmp_path / "cfg"
    config = write_config(folder, redis_url, port)
    tenant = uniq("fld")
    secret = f"sk_test_{tenant}_0123456789"
    (folder / "tenants" / "fld.toml").write_text(
        f'id = "{tenant}"\n[[api_keys]]\nname = "b"\nkind = "secret"\nkey = "{secret}"\n'
    )

    def fields(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli("fields", *args, "--config", str(config), "--tenant", tenant, cwd=tmp_path)

    with serving(config, port, tmp_path / "serve.log"), client(port) as api:
        api.headers["Authorization"] = f"Bearer {secret}"
        holder = api.post("/v1/identify", json={"user_id": "h", "traits": {"score": 5}}).json()
        api.post("/v1/identify", json={"user_id": "o", "traits": {"other": "x"}})
        api.post(
            "/v1/identify", json={"user_id": "c", "company": {"domain": "c.example.com", "rank": 1}}
        )

        listed = fields("list")
        refused = fields("reset", "score")
        unknown = fields("reset", "nothing_like_it")
        api.post("/v1/identify", json={"user_id": "h", "traits": {"score": None}})
        forgotten = fields("reset", "score")
        retyped = api.post("/v1/identify", json={"user_id": "h", "traits": {"score": "high"}})
        company = fields("reset", "company.rank")

    assert listed.returncode == 0
    assert listed.stdout.split("\n")[1:4] == [
        "contact  other  text",
        "contact  score  number",
        "company  rank   number",
    ]
    assert refused.returncode == 1
    assert f"is held by {holder['contact']['id']}" in refused.stderr
    assert unknown.returncode == 1 and "no inferred type" in unknown.stderr
    assert forgotten.returncode == 0, forgotten.stderr
    assert "type forgotten" in forgotten.stdout
    assert retyped.status_code == 200  # the field takes a text now
    assert retyped.json()["contact"]["properties"]["score"] == "high"
    assert company.returncode == 1 and "is held by co_" in company.stderr
