"""Config files → validated :class:`Settings`.

Steps per file: TOML parse → ``${ENV}`` interpolation → ``msgspec.convert`` into the file's
Struct → relative paths made absolute. Every problem becomes a :class:`ConfigIssue` naming the
file and the ``$.key.path``; all files are decoded before :class:`ConfigError` is raised, so
an operator sees every mistake at once. This package only decodes: the checks that need the
rest of the gateway run from :mod:`idgateway.config`.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec

from idgateway.settings._schema import GatewayFile, TenantFile, dec_hook

# ${NAME}, or ${NAME:-default} (the default when NAME is unset, as in the shell)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_MSGSPEC_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.S)

T = TypeVar("T")


@dataclass(frozen=True)
class ConfigIssue:
    """One problem of one file, at a ``$.key.path``. A ``warning`` is reported but does not
    stop the gateway (e.g. a host name that does not resolve right now)."""

    file: str
    path: str
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{prefix}{self.file}: {self.path}: {self.message}"


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
    warnings: list[ConfigIssue] = field(default_factory=list)  # set by load_config


def _interpolate(value: Any, path: str, file: str, issues: list[ConfigIssue]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            found = os.environ.get(name, default)
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


def _resolved(tenant: TenantFile, base: Path) -> TenantFile:
    """The tenant with its relative paths made absolute (from its own file's folder)."""
    if tenant.profile is None:
        return tenant
    profile = msgspec.structs.replace(
        tenant.profile, template=_resolve(base, tenant.profile.template)
    )
    return msgspec.structs.replace(tenant, profile=profile)


def decode_settings(
    config_path: str | os.PathLike[str],
) -> tuple[Settings | None, list[ConfigIssue]]:
    """Decode ``gateway.toml`` and every tenant file it points at: TOML, ``${ENV}``, the
    schema, paths made absolute. The settings (``None`` when the gateway file itself cannot
    be read) hold every tenant that decoded; the issues are those of the others.
    """
    path = Path(config_path).resolve()
    issues: list[ConfigIssue] = []
    gateway = _decode_file(path, GatewayFile, issues)
    if gateway is None:
        return None, issues
    base = path.parent
    tenants_dir = Path(_resolve(base, gateway.tenants.dir))
    data_dir = _resolve(base, gateway.redis.data_dir)
    gateway = msgspec.structs.replace(
        gateway,
        redis=msgspec.structs.replace(gateway.redis, data_dir=data_dir),
        tenants=msgspec.structs.replace(gateway.tenants, dir=str(tenants_dir)),
    )
    settings = Settings(config_path=path, gateway=gateway)
    if not tenants_dir.is_dir():
        issues.append(ConfigIssue(str(path), "$.tenants.dir", f"no such folder: {tenants_dir}"))
        return None, issues

    for tenant_path in sorted(tenants_dir.glob("*.toml")):
        tenant = _decode_file(tenant_path, TenantFile, issues)
        if tenant is None:
            continue
        if tenant.id in settings.tenants:
            other = settings.tenant_files[tenant.id]
            issues.append(
                ConfigIssue(str(tenant_path), "$.id", f"tenant id {tenant.id!r} also in {other}")
            )
            continue
        settings.tenants[tenant.id] = _resolved(tenant, tenant_path.parent)
        settings.tenant_files[tenant.id] = tenant_path
    if not settings.tenants and not issues:
        issues.append(ConfigIssue(str(tenants_dir), "$", "no tenant files (*.toml) found"))
    return settings, issues


def load_settings(config_path: str | os.PathLike[str]) -> Settings:
    """:func:`decode_settings`, refusing any issue. What only the rest of the gateway can
    judge (field rules, adapters, templates, keys shared across tenants) is checked by
    :func:`idgateway.config.load_config`.

    Raises:
        ConfigError: listing every problem, each with file and key path.
    """
    settings, issues = decode_settings(config_path)
    if settings is None or issues:
        raise ConfigError(issues)
    return settings
