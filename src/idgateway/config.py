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
from pathlib import Path
from typing import TYPE_CHECKING

from idgateway.delivery import AdapterLoadError, registry, settings_issues
from idgateway.fields import registry_issues
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


VALIDATORS: list[Validator] = [
    field_rules,
    blocked_patterns,
    vendors,
    profile_templates,
    unique_keys,
]


def check_settings(settings: Settings) -> list[ConfigIssue]:
    """Every problem the validators find."""
    return [issue for validator in VALIDATORS for issue in validator(settings)]


def _in_file_order(settings: Settings, issues: list[ConfigIssue]) -> list[ConfigIssue]:
    files = [str(settings.config_path), *sorted(str(f) for f in settings.tenant_files.values())]
    rank = {file: n for n, file in enumerate(files)}
    return sorted(issues, key=lambda i: rank.get(i.file, len(rank)))


def load_config(config_path: str | os.PathLike[str]) -> Settings:
    """Decode and check the configuration.

    Raises:
        ConfigError: every problem of every file, each with file and key path.
    """
    settings, issues = decode_settings(config_path)
    if settings is not None:
        issues = _in_file_order(settings, issues + check_settings(settings))
    if settings is None or issues:
        raise ConfigError(issues)
    return settings
