"""``config check`` applies the outbound guard's rules to every configured URL (SPEC §7, §9).

The profile's ``webhook_url`` and every vendor setting of type ``url`` are judged as the
guarded client judges a call: http/https only; loopback, private, link-local, unique-local
refused unless the tenant sets ``allow_private_networks``; multicast and reserved always.
Every load (``serve`` too) judges what the files say (scheme, host, IP literals); ``config
check`` also resolves host names (here through the hosts file: ``localhost``; ``.invalid``
never resolves, RFC 6761). A refused URL is an error naming file and key path; a name that
does not resolve is a warning (the guard resolves again on every call); a disabled vendor's
host is not resolved.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

import msgspec
import pytest

from idgateway.config import load_config, outbound_urls
from idgateway.settings import ConfigError
from tests.unit.settings.test_settings import make_tree, tenant_file, tenant_toml, vendor_table

if TYPE_CHECKING:
    from pathlib import Path

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def profile(url: str) -> str:
    return f'[profile]\nwebhook_url = "{url}"\ntemplate = "p.liquid"\n'


def webhook_vendor(url: str, extra: str = "") -> str:
    return vendor_table("webhook", f'url = "{url}"\nsecret = "{WHSEC}"\n', extra)


def tree(tmp_path: Path, tables: str, *, private: bool = False) -> Path:
    top = "allow_private_networks = true" if private else ""
    path = make_tree(tmp_path, "", {"acme": tenant_toml(top=top, tables=tables)})
    (tmp_path / "tenants" / "p.liquid").write_text("{{ name }}\n")
    return path


def errors_of(path: Path, *, resolve_hosts: bool = True) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, resolve_hosts=resolve_hosts)
    return {i.path: i.message for i in info.value.issues if i.severity == "error"}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme 'file' is not allowed"),
        ("gopher://example.com:70/1", "scheme 'gopher' is not allowed"),
        ("http://127.0.0.1:8080/p", "loopback address"),
        ("http://[::1]/p", "loopback address"),
        ("http://10.1.2.3/p", "private address"),
        ("http://169.254.169.254/latest/meta-data", "link-local address"),
        ("http://localhost:8080/p", "loopback address"),  # resolved through the hosts file
        ("http://224.0.0.1/p", "multicast address"),
    ],
)
def test_a_profile_webhook_the_guard_refuses_is_an_error(
    tmp_path: Path, url: str, reason: str
) -> None:
    path = tree(tmp_path, profile(url))

    errors = errors_of(path)

    assert list(errors) == ["$.profile.webhook_url"]
    assert reason in errors["$.profile.webhook_url"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("gopher://hooks.example.com/x", "scheme 'gopher' is not allowed"),
        ("http://localhost/hook", "localhost resolves to"),
        ("https://192.168.1.10/hook", "private address"),
    ],
)
def test_a_vendor_url_setting_the_guard_refuses_is_an_error(
    tmp_path: Path, url: str, reason: str
) -> None:
    path = tree(tmp_path, webhook_vendor(url))

    errors = errors_of(path)

    assert reason in errors["$.vendors[0].settings.url"], errors


def test_every_refused_url_is_reported_at_once(tmp_path: Path) -> None:
    tables = profile("file:///p") + webhook_vendor("http://127.0.0.1/a")
    tables += webhook_vendor("http://10.0.0.1/b", 'name = "second"')

    errors = errors_of(tree(tmp_path, tables))

    assert set(errors) >= {
        "$.profile.webhook_url",
        "$.vendors[0].settings.url",
        "$.vendors[1].settings.url",
    }


def test_a_host_name_no_resolver_takes_is_an_error_not_a_crash(tmp_path: Path) -> None:
    tables = profile("http://a..example/p") + webhook_vendor(f"http://{'a' * 64}.example/")

    errors = errors_of(tree(tmp_path, tables))

    assert "invalid host" in errors["$.profile.webhook_url"]
    assert "invalid host" in errors["$.vendors[0].settings.url"]


def test_allow_private_networks_opens_loopback_and_private_targets(tmp_path: Path) -> None:
    tables = profile("http://localhost:8080/p") + webhook_vendor("http://10.0.0.1/hook")

    settings = load_config(tree(tmp_path, tables, private=True), resolve_hosts=True)

    assert settings.warnings == []


def test_allow_private_networks_never_opens_multicast_nor_other_schemes(tmp_path: Path) -> None:
    tables = profile("ftp://10.0.0.1/p") + webhook_vendor("http://239.1.2.3/hook")

    errors = errors_of(tree(tmp_path, tables, private=True))

    assert "scheme 'ftp'" in errors["$.profile.webhook_url"]
    assert "multicast" in errors["$.vendors[0].settings.url"]


def test_a_public_address_passes(tmp_path: Path) -> None:
    path = tree(tmp_path, profile("https://93.184.216.34/groove/profile"))
    settings = load_config(path, resolve_hosts=True)

    assert settings.warnings == []


def test_a_host_that_does_not_resolve_is_a_warning_not_an_error(tmp_path: Path) -> None:
    path = tree(tmp_path, profile("https://profiles.acme.invalid/p"))

    settings = load_config(path, resolve_hosts=True)

    assert [(w.path, w.severity) for w in settings.warnings] == [
        ("$.profile.webhook_url", "warning")
    ]
    assert "profiles.acme.invalid" in settings.warnings[0].message
    assert str(settings.warnings[0]).startswith("warning: ")


def test_a_disabled_vendor_is_checked_but_its_host_not_resolved(tmp_path: Path) -> None:
    unresolved = webhook_vendor("http://localhost/hook", "enabled = false")
    settings = load_config(tree(tmp_path, unresolved), resolve_hosts=True)
    assert settings.warnings == []

    literal = webhook_vendor("http://127.0.0.1/hook", "enabled = false")
    errors = errors_of(tree(tmp_path / "literal", literal))
    assert "loopback" in errors["$.vendors[0].settings.url"]


def test_serve_judges_the_files_alone_and_resolves_no_host_name(tmp_path: Path) -> None:
    """A gateway does not refuse to start over a DNS answer: a host name passes its load (the
    guard judges each call), a literal loopback address does not."""
    named = tree(tmp_path / "named", profile("http://localhost:8080/p"))
    literal = tree(tmp_path / "literal", profile("http://127.0.0.1:8080/p"))

    assert load_config(named).warnings == []
    assert "loopback" in errors_of(literal, resolve_hosts=False)["$.profile.webhook_url"]
    assert "loopback" in errors_of(named, resolve_hosts=True)["$.profile.webhook_url"]


def test_the_validator_names_the_tenant_file_and_the_key_path(tmp_path: Path) -> None:
    settings = load_config(tree(tmp_path, webhook_vendor("http://127.0.0.1/hook"), private=True))
    settings.tenants["acme"] = msgspec.structs.replace(
        settings.tenants["acme"], allow_private_networks=False
    )

    (issue,) = outbound_urls(settings)

    assert (issue.file, issue.path, issue.severity) == (
        str(tenant_file(tmp_path)),
        "$.vendors[0].settings.url",
        "error",
    )
    assert issue.message == "refused by the outbound guard: 127.0.0.1: loopback address"


def test_config_check_exits_1_on_a_refused_url_and_0_with_a_warning(tmp_path: Path) -> None:
    refused = tree(tmp_path / "refused", profile("http://127.0.0.1:8080/p"))
    warned = tree(tmp_path / "warned", profile("https://nothing-here.invalid/p"))

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "idgateway", "config", "check", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    bad, ok = check(refused), check(warned)

    assert bad.returncode == 1
    assert "$.profile.webhook_url: refused by the outbound guard: 127.0.0.1: loopback" in bad.stderr
    assert ok.returncode == 0
    assert "warning: " in ok.stdout and "nothing-here.invalid" in ok.stdout
