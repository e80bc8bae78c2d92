"""A tenant at run time: its config plus the field registries built from it, once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from idgateway.fields import Registry, build_registry
from idgateway.settings import TenantFile  # noqa: TC001 (Litestar reads the hints at run time)

if TYPE_CHECKING:
    from idgateway.settings import Settings


@dataclass(frozen=True)
class Tenant:
    config: TenantFile
    contacts: Registry
    companies: Registry

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def session_ttl_ms(self) -> int:
        return int(self.config.session_ttl * 1000)

    @classmethod
    def build(cls, config: TenantFile) -> Tenant:
        return cls(
            config=config,
            contacts=build_registry(config, "contact"),
            companies=build_registry(config, "company"),
        )


def build_tenants(settings: Settings) -> dict[str, Tenant]:
    return {tid: Tenant.build(cfg) for tid, cfg in settings.tenants.items()}
