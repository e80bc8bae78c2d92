"""The adapter registry: the shipped adapters, listed here, plus third-party ones from the
``idgateway.vendors`` entry-point group.

A shipped adapter is a folder ``vendors/<name>/`` at the repository root (or under
``IDGW_VENDORS_DIR``) with ``manifest.toml`` and ``adapter.py`` defining ``ADAPTER`` (an
:class:`~idgateway.delivery.Adapter` subclass). An entry point loads a module that defines
``ADAPTER`` and has ``manifest.toml`` beside it. Every manifest's ``name`` must equal its
folder (or entry point) name.
"""

from __future__ import annotations

import importlib.util
import os
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

from idgateway.delivery._contract import Adapter, Capability, Manifest, SettingSpec

SHIPPED = ("smooch", "sunshine", "gist", "groove", "pipedrive", "webhook")
ENTRY_POINT_GROUP = "idgateway.vendors"
_CAPABILITIES: frozenset[Capability] = frozenset(
    {"contact.upsert", "contact.delete", "company.upsert"}
)


class AdapterLoadError(Exception):
    pass


@dataclass(frozen=True)
class AdapterType:
    manifest: Manifest
    cls: type[Adapter]

    def build(self, vendor: str, settings: dict[str, Any]) -> Adapter:
        full = {s.name: settings.get(s.name, s.default) for s in self.manifest.settings}
        return self.cls(vendor, full, self.manifest)


def vendors_dir() -> Path:
    given = os.environ.get("IDGW_VENDORS_DIR")
    return Path(given) if given else Path(__file__).resolve().parents[3] / "vendors"


def parse_manifest(path: Path, expected_name: str) -> Manifest:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise AdapterLoadError(f"{path}: {exc}") from None
    name = raw.get("name")
    if name != expected_name:
        raise AdapterLoadError(f"{path}: name {name!r} must equal {expected_name!r}")
    caps = raw.get("capabilities", [])
    unknown = set(caps) - _CAPABILITIES
    if unknown or not caps:
        raise AdapterLoadError(f"{path}: capabilities must be some of {sorted(_CAPABILITIES)}")
    settings = tuple(
        SettingSpec(
            name=s["name"],
            type=s.get("type", "string"),
            required=s.get("required", True),
            secret=s.get("secret", False),
            default=s.get("default"),
        )
        for s in raw.get("settings", [])
    )
    known = {"name", "display_name", "version", "capabilities", "settings", "limits", "extra"}
    if set(raw) - known:
        raise AdapterLoadError(f"{path}: unknown keys {sorted(set(raw) - known)}")
    return Manifest(
        name=name,
        display_name=raw.get("display_name", name),
        version=str(raw.get("version", "0")),
        capabilities=frozenset(caps),
        settings=settings,
        limits=raw.get("limits", {}),
        extra=raw.get("extra", {}),
    )


def _adapter_class(module: ModuleType, where: str) -> type[Adapter]:
    cls = getattr(module, "ADAPTER", None)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise AdapterLoadError(f"{where}: must define ADAPTER, an Adapter subclass")
    return cls


def _load_folder(folder: Path) -> AdapterType:
    manifest = parse_manifest(folder / "manifest.toml", folder.name)
    spec = importlib.util.spec_from_file_location(
        f"idgateway_vendors.{folder.name}", folder / "adapter.py"
    )
    if spec is None or spec.loader is None:
        raise AdapterLoadError(f"{folder}: no adapter.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return AdapterType(manifest, _adapter_class(module, str(folder)))


@cache
def registry() -> dict[str, AdapterType]:
    """Every adapter this installation can run, by name."""
    found = {name: _load_folder(vendors_dir() / name) for name in SHIPPED}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        module = ep.load()
        if not isinstance(module, ModuleType) or module.__file__ is None:
            raise AdapterLoadError(f"entry point {ep.name}: must name a module")
        manifest = parse_manifest(Path(module.__file__).parent / "manifest.toml", ep.name)
        found[ep.name] = AdapterType(manifest, _adapter_class(module, ep.name))
    return found


def settings_issues(adapter: AdapterType, settings: dict[str, Any]) -> list[tuple[str, str]]:
    """Problems of a ``[vendors.settings]`` table as ``(key, message)``; values never shown."""
    manifest = adapter.manifest
    issues: list[tuple[str, str]] = []
    specs = {s.name: s for s in manifest.settings}
    for key in sorted(set(settings) - set(specs)):
        issues.append((key, "unknown setting"))
    for spec in manifest.settings:
        value = settings.get(spec.name)
        if value is None:
            if spec.required and spec.default is None:
                issues.append((spec.name, "missing setting"))
            continue
        if spec.type in ("string", "url") and not isinstance(value, str):
            issues.append((spec.name, "expected a string"))
        elif spec.type == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
            issues.append((spec.name, "expected an integer"))
        elif spec.type == "boolean" and not isinstance(value, bool):
            issues.append((spec.name, "expected true or false"))
        elif spec.type == "url" and urlsplit(value).scheme not in ("http", "https"):
            issues.append((spec.name, "expected an http(s) URL"))
        elif spec.secret and isinstance(value, str) and not value.strip():
            issues.append((spec.name, "empty secret"))
    if not issues:
        issues.extend(adapter.cls.settings_issues(settings))
    return issues
