"""Configuration: ``gateway.toml`` plus one TOML file per tenant, decoded into Structs."""

from idgateway.settings._loader import (
    ConfigError,
    ConfigIssue,
    Settings,
    decode_settings,
    load_settings,
)
from idgateway.settings._schema import (
    ApiKeyConfig,
    Duration,
    FieldConfig,
    FieldType,
    GatewayFile,
    KeyKind,
    ProfileConfig,
    Rate,
    TenantFile,
)

__all__ = [
    "ApiKeyConfig",
    "ConfigError",
    "ConfigIssue",
    "Duration",
    "FieldConfig",
    "FieldType",
    "GatewayFile",
    "KeyKind",
    "ProfileConfig",
    "Rate",
    "Settings",
    "TenantFile",
    "decode_settings",
    "load_settings",
]
