"""Config files → validated :class:`Settings`.

Steps per file: TOML parse → ``${ENV}`` interpolation → ``msgspec.convert`` into the file's
Struct → semantic checks the type system cannot express (field keys, duplicate API keys,
paths). Every problem becomes a :class:`ConfigIssue` naming the file and the ``$.key.path``;
all files are checked before :class:`ConfigError` is raised, so an operator sees every
mistake at once.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from idgateway.settings._schema import GatewayFile, TenantFile, dec_hook

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.S)

T = TypeVar("T")


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.path}: {self.message}"


class ConfigError(Exception):
    """The configuration is invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


@dataclass
class Settings:
    """The whole validated configuration: gateway file plus every tenant."""

    config_path: Path
    gateway: GatewayFile
    tenants: dict[str, TenantFile] = field(default_factory=dict)
    tenant_files: dict[str, Path] = field(default_factory=dict)


def _interpolate(value: Any, path: str, file: str, issues: list[ConfigIssue]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            found = os.environ.get(name)
            if found is None:
                issues.append(ConfigIssue(file, path, f"environment variable {name} is not set"))
                return ""
            return found

        return _ENV_REF.sub(replace, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{path}.{k}", file, issues) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{path}[{i}]", file, issues) for i, v in enumerate(value)]
    return value


def _decode_file(path: Path, type_: type[T], issues: list[ConfigIssue]) -> T | None:
    file = str(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        issues.append(ConfigIssue(file, "$", f"cannot read: {exc.strerror or exc}"))
        return None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        issues.append(ConfigIssue(file, "$", f"not valid TOML: {exc}"))
        return None
    before = len(issues)
    raw = _interpolate(raw, "$", file, issues)
    if len(issues) > before:
        return None
    try:
        return msgspec.convert(raw, type=type_, dec_hook=dec_hook)
    except msgspec.ValidationError as exc:
        found = _issues_per_table(raw, type_, file)
        issues.extend(found or [_issue(file, exc, "$")])
        return None


def _issue(file: str, exc: msgspec.ValidationError, prefix: str) -> ConfigIssue:
    match = _MSGSPEC_PATH.match(str(exc))
    assert match is not None
    inner = match.group("path") or "$"
    return ConfigIssue(file, prefix + inner[1:], match.group("msg"))


def _issues_per_table(raw: Any, type_: type, file: str) -> list[ConfigIssue]:
    """Every error of a file, not just the first msgspec meets: each top-level key (and each
    item of an array of tables) is converted on its own."""
    if not isinstance(raw, dict):
        return []
    hints = {f.encode_name: f.type for f in msgspec.structs.fields(type_)}
    found: list[ConfigIssue] = []
    for key, value in raw.items():
        path = f"$.{key}"
        if key not in hints:
            found.append(ConfigIssue(file, "$", f"Object contains unknown field `{key}`"))
            continue
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        item_type = hints[key]
        args = getattr(item_type, "__args__", ())
        if isinstance(value, list) and getattr(item_type, "__origin__", None) is list and args:
            item_type = args[0]
        else:
            items = [(None, value)]
        for index, item in items:
            try:
                msgspec.convert(item, type=item_type, dec_hook=dec_hook)
            except msgspec.ValidationError as exc:
                found.append(_issue(file, exc, path if index is None else f"{path}[{index}]"))
    return found


def _resolve(base: Path, value: str) -> str:
    p = Path(value)
    return str(p if p.is_absolute() else (base / p).resolve())


def _check_tenant(tenant: TenantFile, file: str, base: Path, issues: list[ConfigIssue]) -> None:
    # Imported here: the field registry is the single source of the key and type rules.
    from idgateway.fields import registry_issues

    for path, message in registry_issues(tenant):
        issues.append(ConfigIssue(file, path, message))
    for i, pattern in enumerate(tenant.blocked_identifiers):
        try:
            re.compile(pattern)
        except re.error as exc:
            issues.append(ConfigIssue(file, f"$.blocked_identifiers[{i}]", f"bad pattern: {exc}"))
    from idgateway.delivery import AdapterLoadError, registry, settings_issues

    try:
        adapters = registry()
    except AdapterLoadError as exc:
        issues.append(ConfigIssue(file, "$.vendors", f"adapters cannot be loaded: {exc}"))
        adapters = {}
    names: set[str] = set()
    for i, vendor in enumerate(tenant.vendors):
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
    if tenant.profile is not None:
        template = _resolve(base, tenant.profile.template)
        tenant.profile.template = template
        if not Path(template).is_file():
            issues.append(ConfigIssue(file, "$.profile.template", f"no such file: {template}"))
        else:
            from idgateway.profiles import syntax_error

            problem = syntax_error(Path(template))
            if problem:
                issues.append(ConfigIssue(file, "$.profile.template", problem))


def load_settings(config_path: str | os.PathLike[str]) -> Settings:
    """Load and validate ``gateway.toml`` and every tenant file it points at.

    Raises:
        ConfigError: listing every problem, each with file and key path.
    """
    path = Path(config_path).resolve()
    issues: list[ConfigIssue] = []
    gateway = _decode_file(path, GatewayFile, issues)
    if gateway is None:
        raise ConfigError(issues)
    base = path.parent
    gateway.redis.data_dir = _resolve(base, gateway.redis.data_dir)
    tenants_dir = Path(_resolve(base, gateway.tenants.dir))
    gateway.tenants.dir = str(tenants_dir)
    settings = Settings(config_path=path, gateway=gateway)
    if not tenants_dir.is_dir():
        issues.append(ConfigIssue(str(path), "$.tenants.dir", f"no such folder: {tenants_dir}"))
        raise ConfigError(issues)

    seen_keys: dict[str, str] = {}
    for tenant_path in sorted(tenants_dir.glob("*.toml")):
        tenant = _decode_file(tenant_path, TenantFile, issues)
        if tenant is None:
            continue
        file = str(tenant_path)
        if tenant.id in settings.tenants:
            other = settings.tenant_files[tenant.id]
            issues.append(ConfigIssue(file, "$.id", f"tenant id {tenant.id!r} also in {other}"))
            continue
        _check_tenant(tenant, file, tenant_path.parent, issues)
        from idgateway.api.auth import key_digest

        token = tenant.compat.groove_api_token
        if token:
            digest = hashlib.sha256(token.encode()).digest()
            if digest in seen_keys:
                issues.append(
                    ConfigIssue(file, "$.compat.groove_api_token", f"same as {seen_keys[digest]}")
                )
            seen_keys[digest] = f"{tenant.id}/compat.groove_api_token"
        for i, key in enumerate(tenant.api_keys):
            digest = key_digest(key)
            if digest in seen_keys:
                issues.append(
                    ConfigIssue(file, f"$.api_keys[{i}]", f"same key as {seen_keys[digest]}")
                )
            seen_keys[digest] = f"{tenant.id}/{key.name}"
        settings.tenants[tenant.id] = tenant
        settings.tenant_files[tenant.id] = tenant_path
    if not settings.tenants and not issues:
        issues.append(ConfigIssue(str(tenants_dir), "$", "no tenant files (*.toml) found"))
    if issues:
        raise ConfigError(issues)
    return settings
