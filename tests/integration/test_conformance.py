"""The data-driven conformance suite: every rule of the vendor documents (``seeds/``, as SPEC
§5.4 and §5.5 restate them) proven through the real HTTP API.

The cases live in ``tests/conformance/*.json`` (format: ``tests/conformance/README.md``); this
module runs each one as its own test against the ``gateway`` fixture, and checks that the case
files themselves are sound: valid shape, unique ids, and a passing (2xx) and a failing (4xx)
case for every rule.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ACME_PUBLISHABLE, ACME_SECRET, RunningGateway

CASES_DIR = Path(__file__).resolve().parent.parent / "conformance"
DIALECTS = ("groove", "gist", "smooch", "groove_profile")
# <dialect>.<rule>.<pass|fail>[-<variant>]; the rule id is <dialect>.<rule>.
CASE_ID = re.compile(
    r"^(?P<rule>(?P<dialect>[a-z_]+)\.[a-z0-9-]+)\.(?P<kind>pass|fail)(?:-[a-z0-9-]+)?$"
)
CASE_KEYS = {"id", "rule", "seed", "setup", "request", "status", "expect", "then"}
REQUEST_KEYS = {"method", "path", "key", "query", "body", "headers", "save"}
EXPECT_KEYS = {
    "contact",
    "violations",
    "discarded",
    "body",
    "appUser",
    "absent",
    "body_exact",
    "keys_match",
    "flat",
}
KEYS = {"secret", "publishable", "none"}
SAVED = re.compile(r"^[a-z][a-z0-9_]*$")
MISSING = object()


# --- loading -------------------------------------------------------------------------------


def load_files() -> dict[str, list[dict[str, Any]]]:
    files: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(CASES_DIR.glob("*.json")):
        with path.open(encoding="utf-8") as f:
            files[path.name] = json.load(f)
    return files


def all_cases() -> list[dict[str, Any]]:
    """Every runnable case; anything malformed is reported by ``test_case_files_are_sound``."""
    return [
        case
        for cases in load_files().values()
        if isinstance(cases, list)
        for case in cases
        if isinstance(case, dict) and isinstance(case.get("id"), str) and "request" in case
    ]


# --- running -------------------------------------------------------------------------------


def substitute(value: Any, tokens: dict[str, str]) -> Any:
    """``{u}``, ``{n}`` and ``{<saved name>}`` replaced in every string, dict keys included."""
    if isinstance(value, str):
        for name, replacement in tokens.items():
            value = value.replace("{" + name + "}", replacement)
        return value
    if isinstance(value, list):
        return [substitute(v, tokens) for v in value]
    if isinstance(value, dict):
        return {substitute(k, tokens): substitute(v, tokens) for k, v in value.items()}
    return value


def headers_for(request: dict[str, Any]) -> dict[str, str]:
    headers = dict(request.get("headers", {}))
    key = request.get("key", "secret")
    if key == "secret":
        headers["Authorization"] = f"Bearer {ACME_SECRET}"
    elif key == "publishable":
        headers["X-Idgw-Key"] = ACME_PUBLISHABLE
    return headers


def send(client: httpx.Client, request: dict[str, Any]) -> httpx.Response:
    kwargs: dict[str, Any] = {"headers": headers_for(request)}
    if "query" in request:
        kwargs["params"] = request["query"]
    if "body" in request:
        kwargs["json"] = request["body"]
    return client.request(request["method"], request["path"], **kwargs)


def body_of(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def dig(data: Any, path: str) -> Any:
    """The value at a dotted path (``contact.properties.role``, ``items.0.id``) or MISSING."""
    for part in path.split("."):
        if isinstance(data, dict) and part in data:
            data = data[part]
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return MISSING
    return data


def subset_problems(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Why ``actual`` does not contain ``expected``: dicts by subset, lists element-wise with
    equal length, scalars by equality (``true`` is not ``1``)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        problems: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                problems.append(f"{where}.{key}: missing (expected {value!r})")
            else:
                problems.extend(subset_problems(value, actual[key], f"{where}.{key}"))
        return problems
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {expected!r}, got {actual!r}"]
        return [
            p
            for i, (e, a) in enumerate(zip(expected, actual, strict=True))
            for p in subset_problems(e, a, f"{where}[{i}]")
        ]
    if isinstance(expected, bool) != isinstance(actual, bool) or expected != actual:
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    return []


def check(expect: dict[str, Any], body: Any) -> list[str]:
    problems: list[str] = []
    for name in ("contact", "appUser"):
        if name in expect:
            problems += subset_problems(expect[name], dig(body, name), f"$.{name}")
    if "body" in expect:
        problems += subset_problems(expect["body"], body)
    if "body_exact" in expect and body != expect["body_exact"]:
        problems.append(f"body: expected exactly {expect['body_exact']!r}, got {body!r}")
    if "violations" in expect:
        errors = body.get("errors") if isinstance(body, dict) else None
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            errors = body["error"].get("errors")  # the Smooch dialect's own shape (SPEC §5.5)
        got = [(e.get("path"), e.get("code")) for e in errors or [] if isinstance(e, dict)]
        for v in expect["violations"]:
            if (v["path"], v["code"]) not in got:
                problems.append(f"violation {v['path']} {v['code']} not among {got}")
    if "discarded" in expect:
        got_discarded = body.get("discarded") if isinstance(body, dict) else None
        if not isinstance(got_discarded, list) or set(got_discarded) != set(expect["discarded"]):
            wanted = sorted(expect["discarded"])
            problems.append(f"discarded: expected {wanted} (any order), got {got_discarded!r}")
    for path in expect.get("absent", []):
        if dig(body, path) is not MISSING:
            problems.append(f"{path}: expected absent, got {dig(body, path)!r}")
    if "keys_match" in expect:
        pattern = re.compile(expect["keys_match"])
        keys = list(body) if isinstance(body, dict) else []
        bad = [k for k in keys if not pattern.fullmatch(k)]
        if not isinstance(body, dict) or bad:
            problems.append(f"keys not matching {expect['keys_match']!r}: {bad or body!r}")
    if expect.get("flat"):
        if not isinstance(body, dict):
            problems.append(f"expected one flat object, got {body!r}")
        elif nested := [k for k, v in body.items() if isinstance(v, dict | list)]:
            problems.append(f"expected one flat object of scalars; nested: {nested!r}")
    return problems


def describe(request: dict[str, Any], response: httpx.Response) -> str:
    return f"{request['method']} {request['path']} -> {response.status_code} {response.text[:2000]}"


CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(gateway: RunningGateway, case: dict[str, Any]) -> None:
    tokens = {"u": uuid.uuid4().hex[:12], "n": f"{uuid.uuid4().int % 10**7:07d}"}
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        # `{sid}`, `{sid2}`: sessions minted for the case with the key its request uses, as a
        # browser gets them (SPEC §4.2)
        mint = {
            "method": "POST",
            "path": "/v1/sessions",
            "key": case["request"].get("key", "secret"),
            "headers": case["request"].get("headers", {}),
        }
        for name in ("sid", "sid2"):
            if "{" + name + "}" in json.dumps(case):
                minted = send(client, mint)
                if minted.status_code != 201:  # the case is about a refused key: mint with acme's
                    minted = send(client, {**mint, "key": "publishable", "headers": {}})
                assert minted.status_code == 201, describe(mint, minted)
                tokens[name] = minted.json()["id"]
        for step in case.get("setup", []):
            step = substitute(step, tokens)
            response = send(client, step)
            assert response.is_success, f"setup failed: {describe(step, response)}"
            for name, path in step.get("save", {}).items():
                value = dig(body_of(response), path)
                assert isinstance(value, str | int), (
                    f"setup: nothing at {path}: {describe(step, response)}"
                )
                tokens[name] = str(value)

        request = substitute(case["request"], tokens)
        response = send(client, request)
        body = body_of(response)
        assert response.status_code == case["status"], describe(request, response)
        problems = check(substitute(case.get("expect", {}), tokens), body)
        assert not problems, "\n".join([*problems, describe(request, response)])

        for then in case.get("then", []):
            then_request = substitute(then["request"], tokens)
            then_response = send(client, then_request)
            assert then_response.status_code == then["status"], "then: " + describe(
                then_request, then_response
            )
            then_expect = substitute(then.get("expect", {}), tokens)
            then_problems = check(then_expect, body_of(then_response))
            assert not then_problems, "\n".join(
                ["then:", *then_problems, describe(then_request, then_response)]
            )


# --- the case files themselves -------------------------------------------------------------


def request_problems(request: Any, where: str) -> list[str]:
    if not isinstance(request, dict):
        return [f"{where}: not an object"]
    problems = [f"{where}: unknown member {k!r}" for k in set(request) - REQUEST_KEYS]
    if request.get("method") not in {"GET", "POST", "PUT", "DELETE", "PATCH"}:
        problems.append(f"{where}.method: {request.get('method')!r}")
    if not isinstance(request.get("path"), str) or not request["path"].startswith("/"):
        problems.append(f"{where}.path: {request.get('path')!r}")
    if request.get("key", "secret") not in KEYS:
        problems.append(f"{where}.key: {request.get('key')!r}")
    for name in ("query", "headers", "save"):
        if name in request and not isinstance(request[name], dict):
            problems.append(f"{where}.{name}: not an object")
    for name in request.get("save", {}) if isinstance(request.get("save"), dict) else ():
        if not SAVED.match(name) or name in ("u", "n", "sid", "sid2"):
            problems.append(f"{where}.save: bad name {name!r}")
    return problems


def expect_problems(expect: Any, status: Any, where: str) -> list[str]:
    if not isinstance(expect, dict):
        return [f"{where}: not an object"]
    problems = [f"{where}: unknown member {k!r}" for k in set(expect) - EXPECT_KEYS]
    for v in expect.get("violations", []):
        if not isinstance(v, dict) or set(v) != {"path", "code"}:
            problems.append(f"{where}.violations: {v!r} is not {{path, code}}")
    for name in ("absent", "discarded"):
        if name in expect and not isinstance(expect[name], list):
            problems.append(f"{where}.{name}: not a list")
    if "flat" in expect and expect["flat"] is not True:
        problems.append(f"{where}.flat: only `true` means something")
    if status == 422 and not expect.get("violations"):
        problems.append(f"{where}: a 422 case names the violations it expects")
    if isinstance(status, int) and 200 <= status < 300 and status != 204 and not expect:
        problems.append(f"{where}: a 2xx case expects something of the answer")
    return problems


def case_problems(case: Any, dialect: str) -> list[str]:
    if not isinstance(case, dict):
        return [f"{case!r}: not an object"]
    cid = case.get("id")
    where = str(cid)
    problems = [f"{where}: unknown member {k!r}" for k in set(case) - CASE_KEYS]
    for name in ("id", "rule", "seed", "request", "status"):
        if name not in case:
            problems.append(f"{where}: missing {name!r}")
    match = CASE_ID.match(cid) if isinstance(cid, str) else None
    if match is None:
        problems.append(f"{where}: id is not <dialect>.<rule>.<pass|fail>[-variant]")
    elif match["dialect"] != dialect:
        problems.append(f"{where}: belongs in {match['dialect']}.json, not {dialect}.json")
    if not isinstance(case.get("rule"), str) or not case["rule"].startswith(("seed ", "SPEC ")):
        problems.append(f"{where}: rule names its source ('seed 000: ...', 'SPEC §4.2: ...')")
    if case.get("seed") not in {"000", "001", "003", "004"}:
        problems.append(f"{where}: seed {case.get('seed')!r}")
    status = case.get("status")
    if not isinstance(status, int) or not 200 <= status < 600:
        problems.append(f"{where}: status {status!r}")
    elif match is not None:
        if match["kind"] == "pass" and not 200 <= status < 300:
            problems.append(f"{where}: a pass case answers 2xx, not {status}")
        if match["kind"] == "fail" and not 400 <= status < 500:
            problems.append(f"{where}: a fail case answers 4xx, not {status}")
    for i, step in enumerate(case.get("setup", [])):
        problems += request_problems(step, f"{where}.setup[{i}]")
    problems += request_problems(case.get("request"), f"{where}.request")
    if isinstance(case.get("request"), dict) and "save" in case["request"]:
        problems.append(f"{where}.request: only setup steps save values")
    problems += expect_problems(case.get("expect", {}), status, f"{where}.expect")
    for i, then in enumerate(case.get("then", [])):
        if not isinstance(then, dict) or set(then) - {"request", "status", "expect"}:
            problems.append(f"{where}.then[{i}]: not {{request, status, expect}}")
            continue
        if not isinstance(then.get("status"), int):
            problems.append(f"{where}.then[{i}]: status {then.get('status')!r}")
        problems += request_problems(then.get("request"), f"{where}.then[{i}].request")
        problems += expect_problems(
            then.get("expect", {}), then.get("status"), f"{where}.then[{i}].expect"
        )
    return problems


def test_case_files_are_sound() -> None:
    files = load_files()
    assert {f"{d}.json" for d in DIALECTS} <= set(files), sorted(files)
    problems: list[str] = []
    seen: set[str] = set()
    kinds: dict[str, set[str]] = defaultdict(set)
    for name, cases in files.items():
        dialect = name.removesuffix(".json")
        if dialect not in DIALECTS:
            problems.append(f"{name}: not a dialect of {DIALECTS}")
        if not isinstance(cases, list) or not cases:
            problems.append(f"{name}: not a non-empty list of cases")
            continue
        for case in cases:
            problems += case_problems(case, dialect)
            cid = case.get("id") if isinstance(case, dict) else None
            if cid in seen:
                problems.append(f"{cid}: duplicate id")
            seen.add(str(cid))
            match = CASE_ID.match(cid) if isinstance(cid, str) else None
            if match is not None:
                kinds[match["rule"]].add(match["kind"])
    for rule, found in sorted(kinds.items()):
        for kind in ("pass", "fail"):
            if kind not in found:
                problems.append(f"rule {rule}: no {kind}ing case")
    assert not problems, "\n".join(problems)
