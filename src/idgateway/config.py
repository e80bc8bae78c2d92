"""Loading the configuration the gateway runs on: decoding (:mod:`idgateway.settings`), then
every check that needs the rest of the gateway, as a list of validators.

Each validator takes the decoded :class:`Settings` and returns its problems as
:class:`ConfigIssue` (file and ``$.key.path``), so ``idgateway config check`` lists every
mistake of every file at once and ``serve`` refuses to start on any of them. A new rule is a new
function in :data:`VALIDATORS`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from ipaddress import ip_address
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from idgateway.delivery import AdapterLoadError, registry, settings_issues
from idgateway.fields import registry_issues
from idgateway.net import BlockedDestination, ResolveFailed, check_url, resolve_now
from idgateway.profiles import syntax_error
from idgateway.settings import ConfigError, ConfigIssue, Settings, decode_settings

if TYPE_CHECKING:
    import os

Validator = Callable[[Settings], list[ConfigIssue]]


def _tenants(settings: Settings) -> list[tuple[str, str]]:
    return [(tid, str(settings.tenant_files[tid])) for tid in settings.tenants]


def field_rules(settings: Settings) -> list[ConfigIssue]:
    """``[[fields.*]]``: keys, standard names, duplicates, options (the field registry's rules)."""
    return [
        ConfigIssue(file, path, message)
        for tid, file in _tenants(settings)
        for path, message in registry_issues(settings.tenants[tid])
    ]


def blocked_patterns(settings: Settings) -> list[ConfigIssue]:
    issues = []
    for tid, file in _tenants(settings):
        for i, pattern in enumerate(settings.tenants[tid].blocked_identifiers):
            try:
                re.compile(pattern)
            except re.error as exc:
                issues.append(
                    ConfigIssue(file, f"$.blocked_identifiers[{i}]", f"bad pattern: {exc}")
                )
    return issues


def vendors(settings: Settings) -> list[ConfigIssue]:
    """``[[vendors]]``: known adapters, unique names, settings the adapter accepts."""
    issues: list[ConfigIssue] = []
    try:
        adapters = registry()
    except AdapterLoadError as exc:
        return [ConfigIssue(str(settings.config_path), "$", f"adapters cannot be loaded: {exc}")]
    for tid, file in _tenants(settings):
        names: set[str] = set()
        for i, vendor in enumerate(settings.tenants[tid].vendors):
            vpath = f"$.vendors[{i}]"
            name = vendor.name or vendor.adapter
            if name in names:
                issues.append(ConfigIssue(file, vpath, f"two vendors named {name!r}: give `name`"))
            names.add(name)
            kind = adapters.get(vendor.adapter)
            if kind is None:
                known = ", ".join(sorted(adapters))
                issues.append(
                    ConfigIssue(file, f"{vpath}.adapter", f"unknown adapter (known: {known})")
                )
                continue
            for key, message in settings_issues(kind, vendor.settings):
                issues.append(ConfigIssue(file, f"{vpath}.settings.{key}", message))
    return issues


def profile_templates(settings: Settings) -> list[ConfigIssue]:
    """``[profile] template``: the file exists and is valid Liquid (file and line)."""
    issues = []
    for tid, file in _tenants(settings):
        profile = settings.tenants[tid].profile
        if profile is None:
            continue
        template = Path(profile.template)
        if not template.is_file():
            issues.append(ConfigIssue(file, "$.profile.template", f"no such file: {template}"))
        elif problem := syntax_error(template):
            issues.append(ConfigIssue(file, "$.profile.template", problem))
    return issues


def unique_keys(settings: Settings) -> list[ConfigIssue]:
    """No API key (nor Groove token) is used twice, in one tenant or across tenants: a key
    names its tenant."""
    issues = []
    seen: dict[bytes, str] = {}
    for tid, file in _tenants(settings):
        tenant = settings.tenants[tid]
        token = tenant.compat.groove_api_token
        if token:
            digest = hashlib.sha256(token.encode()).digest()
            if digest in seen:
                issues.append(
                    ConfigIssue(file, "$.compat.groove_api_token", f"same as {seen[digest]}")
                )
            seen[digest] = f"{tid}/compat.groove_api_token"
        for i, key in enumerate(tenant.api_keys):
            digest = key.digest()
            if digest in seen:
                issues.append(ConfigIssue(file, f"$.api_keys[{i}]", f"same key as {seen[digest]}"))
            seen[digest] = f"{tid}/{key.name}"
    return issues


# `config check` resolves host names in parallel, all within this many seconds: a slow or
# absent DNS delays it by this much at most.
RESOLVE_SECONDS = 3.0


def _outbound_urls(settings: Settings) -> list[tuple[str, str, str, bool, bool]]:
    """Every URL the gateway calls: ``(file, path, url, allow_private, called)``. A disabled
    vendor is not called (its URL is still checked, its host not resolved)."""
    try:
        adapters = registry()
    except AdapterLoadError:
        adapters = {}  # reported by `vendors`
    found = []
    for tid, file in _tenants(settings):
        tenant = settings.tenants[tid]
        private = tenant.allow_private_networks
        if tenant.profile is not None:
            found.append((file, "$.profile.webhook_url", tenant.profile.webhook_url, private, True))
        for i, vendor in enumerate(tenant.vendors):
            kind = adapters.get(vendor.adapter)
            if kind is None:
                continue
            for spec in kind.manifest.settings:
                value = vendor.settings.get(spec.name)
                if spec.type == "url" and isinstance(value, str):
                    path = f"$.vendors[{i}].settings.{spec.name}"
                    found.append((file, path, value, private, vendor.enabled))
    return found


def _judge(
    file: str, path: str, url: str, private: bool, resolve: Callable[[str, int], list[str]] | None
) -> ConfigIssue | None:
    try:
        check_url(url, allow_private=private, resolve=resolve)
    except BlockedDestination as exc:
        where = str(exc).removeprefix("blocked destination").lstrip(": ")
        return ConfigIssue(file, path, f"refused by the outbound guard: {where}")
    except ResolveFailed as exc:
        return ConfigIssue(
            file,
            path,
            f"{exc} (resolved again on every call; the guard refuses it while it fails)",
            severity="warning",
        )
    return None


def outbound_urls(settings: Settings) -> list[ConfigIssue]:
    """The outbound guard's rules (SPEC §7) on every configured URL, the profile's
    ``webhook_url`` and each vendor setting of type ``url``, as far as the files alone tell:
    http/https only, a valid host, and an IP address given as the host in no refused range
    (loopback, private, link-local and unique-local unless the tenant sets
    ``allow_private_networks``; multicast, reserved, unspecified always). Host names are
    judged by :func:`resolved_outbound_urls` (``config check``) and by the guard on every
    call: what a name resolves to is not the files', and a gateway must not refuse to start
    because of a DNS answer."""
    issues = []
    for file, path, url, private, _ in _outbound_urls(settings):
        if (issue := _judge(file, path, url, private, None)) is not None:
            issues.append(issue)
    return issues


def resolved_outbound_urls(
    settings: Settings, resolve: Callable[[str, int], list[str]] = resolve_now
) -> list[ConfigIssue]:
    """What ``config check`` adds to :func:`outbound_urls`: the host names of the URLs the
    gateway calls, resolved now, each answer judged by the guard's rules.

    An address in a refused range is an error: the guard would refuse every call. A name that
    does not resolve is a warning: DNS is not the config's to vouch for (a machine without the
    production resolver, a record not created yet, an outage), and the guard resolves again
    on every call and fails closed, so an unresolved name lets no call through.
    """
    urls = [u for u in _outbound_urls(settings) if u[4] and not _is_ip_literal(u[2])]
    if not urls:
        return []
    pool = ThreadPoolExecutor(max_workers=min(16, len(urls)), thread_name_prefix="config-dns")
    futures = [pool.submit(_judge, *u[:4], resolve) for u in urls]
    done, _ = wait(futures, timeout=RESOLVE_SECONDS)
    pool.shutdown(wait=False, cancel_futures=True)
    issues = []
    for (file, path, *_), future in zip(urls, futures, strict=True):
        if future not in done:
            issue: ConfigIssue | None = ConfigIssue(
                file,
                path,
                f"the host did not resolve within {RESOLVE_SECONDS:g} s "
                "(resolved again on every call)",
                severity="warning",
            )
        else:
            issue = future.result()
        if issue is not None:
            issues.append(issue)
    return issues


def _is_ip_literal(url: str) -> bool:
    try:
        ip_address(urlsplit(url).hostname or "")
    except ValueError:
        return False
    return True


VALIDATORS: list[Validator] = [
    field_rules,
    blocked_patterns,
    vendors,
    profile_templates,
    unique_keys,
    outbound_urls,
]


def check_settings(settings: Settings) -> list[ConfigIssue]:
    """Every problem the validators find."""
    return [issue for validator in VALIDATORS for issue in validator(settings)]


def _in_file_order(settings: Settings, issues: list[ConfigIssue]) -> list[ConfigIssue]:
    files = [str(settings.config_path), *sorted(str(f) for f in settings.tenant_files.values())]
    rank = {file: n for n, file in enumerate(files)}
    return sorted(issues, key=lambda i: rank.get(i.file, len(rank)))


def load_config(config_path: str | os.PathLike[str], *, resolve_hosts: bool = False) -> Settings:
    """Decode and check the configuration. Warnings do not stop it: they are kept in
    ``settings.warnings``.

    Args:
        config_path: ``gateway.toml``.
        resolve_hosts: Also resolve the host names of outbound URLs and judge the answers
            (:func:`resolved_outbound_urls`; ``config check``).

    Raises:
        ConfigError: every problem of every file (warnings included, after the errors), each
            with file and key path.
    """
    settings, issues = decode_settings(config_path)
    if settings is not None:
        found = check_settings(settings)
        if resolve_hosts:
            found += resolved_outbound_urls(settings)
        issues = _in_file_order(settings, issues + found)
    errors = [i for i in issues if i.severity == "error"]
    if settings is None or errors:
        raise ConfigError(errors + [i for i in issues if i.severity != "error"])
    settings.warnings = issues
    return settings
