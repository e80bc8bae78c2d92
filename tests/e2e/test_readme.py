"""The README's examples, run in order against ``make run``'s config, each answer checked.

The ``sh`` blocks of README.md that talk to the gateway (``localhost:8080``) or compute a
``user_hash`` (``openssl``) run top to bottom in one bash, as an operator pastes them into one
terminal, against ``idgateway serve --config config/gateway.toml`` on a free port (a copy of
``config/``, so its embedded Valkey starts empty). ``curl`` is a shell function there that
sends the same request to that port and records the answer (status, body) before printing
it. The test then checks every answer in order, and that the run leaves the records the README
describes (Fred keeps his name, tags and email). A README change that breaks an example, or
adds or drops one, fails here until the expectations below follow.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import free_port, start_gateway, stop_process, wait_ready

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)

CURL = r"""
curl() {
  local n args=() a
  n=$(( $(cat "$README_LOG/count") + 1 )); echo "$n" > "$README_LOG/count"
  for a in "$@"; do args+=("${a//localhost:8080/127.0.0.1:$README_PORT}"); done
  command curl -o "$README_LOG/$n.body" -D "$README_LOG/$n.head" \
    -w '%{http_code} %{method} %{url_effective}' "${args[@]}" > "$README_LOG/$n.meta"
  cat "$README_LOG/$n.body"
}
"""


def readme_blocks() -> list[str]:
    """The README's ``sh`` blocks that talk to the gateway or compute a user_hash."""
    blocks = SH_BLOCK.findall((ROOT / "README.md").read_text())
    return [b for b in blocks if "localhost:8080" in b or "openssl" in b]


class Answer:
    def __init__(self, meta: str, body: bytes, head: str) -> None:
        status, self.method, self.url = meta.split(" ", 2)
        self.status = int(status)
        self.body = body
        self.headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in head.splitlines()[1:])
            if k
        }
        self.path = re.sub(r"^https?://[^/]+", "", self.url)

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"{self.method} {self.path} -> {self.status} {self.body[:300]!r}"


@pytest.fixture
def make_run() -> Iterator[str]:
    """``make run``'s config (a copy of ``config/``: its own empty Valkey) on a free port."""
    root = Path(tempfile.mkdtemp(prefix="idgw-readme-"))  # short: the socket path must fit
    shutil.copytree(ROOT / "config", root / "config")
    port = free_port()
    log = root / "serve.log"
    env_before = {
        k: os.environ.pop(k) for k in ("IDGW_CONFIG", "IDGW_REDIS_URL") if k in os.environ
    }
    process = start_gateway(root / "config" / "gateway.toml", port, log, "--port", str(port))
    try:
        wait_ready(f"http://127.0.0.1:{port}", process, log)
        yield str(port)
    finally:
        stop_process(process)
        os.environ.update(env_before)
        shutil.rmtree(root, ignore_errors=True)


def run_readme(port: str, folder: Path) -> tuple[list[Answer], list[str]]:
    """Run the blocks; every curl's answer in order, and each block's standard output."""
    blocks = readme_blocks()
    script = ["set -euo pipefail", CURL]
    for index, block in enumerate(blocks):
        script += [f"printf '\\n@@block {index}\\n'", block]
    (folder / "count").write_text("0")
    done = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        env={**os.environ, "README_PORT": port, "README_LOG": str(folder)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    outputs = re.split(r"\n@@block \d+\n", done.stdout)[1:]
    answers = []
    for n in range(1, int((folder / "count").read_text()) + 1):
        answers.append(
            Answer(
                (folder / f"{n}.meta").read_text(),
                (folder / f"{n}.body").read_bytes(),
                (folder / f"{n}.head").read_text(),
            )
        )
    return answers, outputs


def test_the_readme_examples_run_top_to_bottom(make_run: str, tmp_path: Path) -> None:
    answers, outputs = run_readme(make_run, tmp_path)
    seen: dict[str, Any] = {}

    def fred(a: Answer) -> None:
        contact = a.json()
        assert contact["external_id"] == "12345"
        assert contact["email"] == "fred@example.com"
        assert contact["name"] == "Fred"
        assert contact["tags"] == ["free", "popular"]
        assert contact["properties"] == {"plan": "Support"}
        seen.setdefault("fred", contact["id"])
        assert contact["id"] == seen["fred"]

    def identify_fred(a: Answer) -> None:
        body = a.json()
        fred_contact = Answer.__new__(Answer)
        fred_contact.body = json.dumps(body["contact"]).encode()
        fred(fred_contact)
        assert body["created"] is True
        assert body["company"]["domain"] == "example.com"
        assert body["company"]["name"] == "Example"

    def profile(a: Answer) -> None:
        assert a.headers["content-type"] == "text/html; charset=utf-8"
        html = a.body.decode()
        assert "fred@example.com" in html, html  # fetched through the example webhook

    def session_minted(a: Answer) -> None:
        seen["session"] = a.json()["id"]
        assert seen["session"].startswith("s_")

    def calls(a: Answer) -> None:
        body = a.json()
        assert body["contact"]["email"] == "tak@envoys.com"
        assert body["contact"]["name"] == "Takeshi Kovacs"
        assert body["company"]["domain"] == "envoys.com"
        assert body["company"]["name"] == "The Envoys"
        assert body["session"]["contact_id"] == body["contact"]["id"]
        seen["takeshi"] = body["contact"]["id"]

    def session(a: Answer) -> None:
        assert a.json()["contact_id"] == seen["takeshi"]

    def gist(a: Answer) -> None:
        contact = a.json()["contact"]
        assert contact["external_id"] == "67890"
        assert contact["email"] == "johndoe@tacos.com"
        assert contact["name"] == "John Doe"
        assert contact["tags"] == ["Free", "popular"]
        assert contact["properties"]["last_paid_at"] == "2010-09-03T06:39:06Z"
        assert contact["properties"]["active_accounts"] == 1872
        assert contact["id"] != seen["fred"]

    def smooch(a: Answer) -> None:
        user = a.json()["appUser"]
        assert user["userId"] == "c7f6e6d6c3a637261bd9656f"
        assert user["givenName"] == "Steve"
        assert user["signedUpAt"] == "2015-01-01T00:00:00Z"
        assert user["properties"] == {"premiumUser": True, "numberOfPurchases": 20}

    def groove_profile(a: Answer) -> None:
        flat = a.json()
        assert flat["external_id"] == "67890"  # John Doe's, found by his email
        assert "email" not in flat and "name" not in flat  # Groove's reserved names
        assert flat["tags"] == "Free, popular"
        assert flat["last_paid_at"] == "2010-09-03T06:39:06Z"
        assert all(not isinstance(v, dict | list) for v in flat.values())

    expected: list[tuple[str, str, tuple[int, ...], Callable[[Answer], None] | None]] = [
        ("GET", "/healthz", (200,), lambda a: None),
        ("POST", "/v1/identify", (201,), identify_fred),
        ("GET", "/v1/contacts?email=fred@example.com", (200,), fred),
        ("GET", "/v1/contacts?user_id=12345", (200,), fred),
        ("GET", "/v1/contacts/{fred}/profile", (200,), profile),
        ("POST", "/v1/sessions", (201,), session_minted),
        ("POST", "/v1/sessions/{session}/calls", (200,), calls),
        ("GET", "/v1/sessions/{session}", (200,), session),
        ("DELETE", "/v1/sessions/{session}", (204,), None),
        ("POST", "/compat/gist/identify", (200, 201), gist),
        (
            "PUT",
            "/compat/smooch/v1.1/apps/5963c0d619a30a2e00de36b8/appusers/c7f6e6d6c3a637261bd9656f",
            (200, 201),
            smooch,
        ),
        (
            "GET",
            "/compat/smooch/v1.1/apps/5963c0d619a30a2e00de36b8/appusers/c7f6e6d6c3a637261bd9656f",
            (200,),
            smooch,
        ),
        (
            "GET",
            "/compat/groove/custom-profile?email=johndoe@tacos.com&api_token=groove_dev_token_0123456789",
            (200,),
            groove_profile,
        ),
    ]
    assert len(answers) == len(expected), answers
    for answer, (method, path, statuses, check) in zip(answers, expected, strict=True):
        want = path.format(**seen)
        assert (answer.method, answer.path) == (method, want), answer
        assert answer.status in statuses, answer
        if check is not None:
            check(answer)

    # the openssl line prints the very user_hash the Groove example sends
    (hmac_output,) = [
        out for block, out in zip(readme_blocks(), outputs, strict=True) if "openssl" in block
    ]
    assert hmac_output.strip() == "ce252fb9d7132d244ccc90ac6339eb725e40f1dfd3ce625d0df5c31dd0f6c82f"
    assert hmac_output.strip() in "\n".join(readme_blocks())

    # and what the README says of Fred still holds after every example ran
    final = subprocess.run(
        [
            "curl",
            "-s",
            f"127.0.0.1:{make_run}/v1/contacts?email=fred@example.com",
            "-H",
            "Authorization: Bearer sk_dev_example_0123456789abcdef",
        ],
        capture_output=True,
        check=True,
        timeout=30,
    )
    after = Answer.__new__(Answer)
    after.body = final.stdout
    fred(after)
