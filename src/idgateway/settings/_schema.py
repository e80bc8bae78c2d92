"""The configuration files as msgspec Structs (SPEC §8).

Two files shapes: ``gateway.toml`` (:class:`GatewayFile`) and one file per tenant
(:class:`TenantFile`). Unknown keys are errors everywhere (``forbid_unknown_fields``).
Durations arrive as strings (``"30d"``) and are held as :class:`Duration` (seconds).
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class Duration(float):
    """A duration in seconds, written in config as ``<n>ms|s|m|h|d``."""

    @classmethod
    def parse(cls, text: object) -> Duration:
        if not isinstance(text, str):
            raise TypeError(f"expected a duration string like '30s', got {type(text).__name__}")
        match = _DURATION.match(text.strip())
        if match is None:
            raise ValueError(f"invalid duration {text!r}: use <n>ms|s|m|h|d, e.g. '30s'")
        return cls(float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


_RATE = re.compile(r"^(\d+)\s*/\s*(s|m|h)$")
_RATE_WINDOW = {"s": 1.0, "m": 60.0, "h": 3600.0}


class Rate:
    """A rate limit, written in config as ``<n>/s``, ``<n>/m`` or ``<n>/h`` (SPEC §8)."""

    __slots__ = ("quota", "window_s")

    def __init__(self, quota: int, window_s: float) -> None:
        self.quota = quota
        self.window_s = window_s

    @classmethod
    def parse(cls, text: object) -> Rate:
        if not isinstance(text, str):
            raise TypeError(f"expected a rate like '1000/s', got {type(text).__name__}")
        match = _RATE.match(text.strip())
        if match is None or int(match.group(1)) < 1:
            raise ValueError(f"invalid rate {text!r}: use <n>/s, <n>/m or <n>/h, e.g. '20/s'")
        return cls(int(match.group(1)), _RATE_WINDOW[match.group(2)])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rate) and (self.quota, self.window_s) == (
            other.quota,
            other.window_s,
        )

    def __hash__(self) -> int:
        return hash((self.quota, self.window_s))

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "m", 3600.0: "h"}[self.window_s]
        return f"{self.quota}/{unit}"

    __repr__ = __str__


def dec_hook(type_: type, obj: Any) -> Any:
    if type_ is Duration:
        return Duration.parse(obj)
    if type_ is Rate:
        return Rate.parse(obj)
    raise NotImplementedError(f"unsupported type {type_!r}")


class Base(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Every config table: unknown keys are errors."""


Port = Annotated[int, Meta(ge=0, le=65535)]
FieldKey = Annotated[str, Meta(min_length=1, max_length=128)]


# --- gateway.toml ---------------------------------------------------------------------------


class ServerSection(Base):
    host: str = "127.0.0.1"
    port: Port = 8080
    max_body_bytes: Annotated[int, Meta(ge=256, le=16 * 1024 * 1024)] = 32768
    workers: Annotated[int, Meta(ge=1, le=256)] = 1
    # Requests with a missing or unknown key, per client address (SPEC §5.1: 20/s). Raise it
    # when many clients reach the gateway from one address (a NAT).
    unknown_key_rate_limit: Rate = msgspec.field(default_factory=lambda: Rate(20, 1.0))


class RedisSection(Base):
    url: str = ""
    data_dir: str = "var/valkey"
    cluster: bool = False  # true: `url` names Redis Cluster seed nodes, comma-separated
    appendfsync: Literal["always", "everysec"] = "always"
    # 1: every write waits (WAIT) until one replica has it before its 2xx (README, Redis choices)
    wait_replicas: Literal[0, 1] = 0

    def __post_init__(self) -> None:
        seeds = [s for s in self.url.split(",") if s.strip()]
        if len(seeds) > 1 and not self.cluster:
            raise ValueError(
                "`url` lists several servers: that is a Redis Cluster's seed nodes, which "
                "needs `cluster = true`"
            )
        if self.cluster and not seeds:
            raise ValueError("`cluster = true` needs the seed nodes in `url`")
        if self.wait_replicas and not seeds:
            raise ValueError(
                "`wait_replicas = 1` needs a Redis with replicas in `url`; the embedded "
                "Valkey has none"
            )


class LoggingSection(Base):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


def _default_schedule() -> list[Duration]:
    return [
        Duration.parse(d)
        for d in ("5s", "30s", "2m", "10m", "30m", "1h", "2h", "4h", "8h", "12h", "24h")
    ]


class DeliverySection(Base):
    retry_schedule: list[Duration] = msgspec.field(default_factory=_default_schedule)
    timeout: Duration = Duration(15.0)
    concurrency: Annotated[int, Meta(ge=1, le=10_000)] = 64
    # Changes to one record within this window reach a vendor as one delivery.
    coalesce_window: Duration = Duration(0.25)

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise ValueError("`timeout` must be more than 0")
        if not self.retry_schedule:
            raise ValueError("`retry_schedule` needs at least one wait")


class TenantsSection(Base):
    dir: str = "tenants"


class GatewayFile(Base):
    server: ServerSection = msgspec.field(default_factory=ServerSection)
    redis: RedisSection = msgspec.field(default_factory=RedisSection)
    logging: LoggingSection = msgspec.field(default_factory=LoggingSection)
    delivery: DeliverySection = msgspec.field(default_factory=DeliverySection)
    tenants: TenantsSection = msgspec.field(default_factory=TenantsSection)


# --- tenants/<id>.toml ----------------------------------------------------------------------

FieldType = Literal[
    "text",
    "long_text",
    "number",
    "boolean",
    "date",
    "datetime",
    "email",
    "phone",
    "link",
    "address",
    "dropdown",
    "tags",
]


KeyKind = Literal["secret", "publishable", "write"]


class ApiKeyConfig(Base):
    """An API key (SPEC §5.1, §8). ``rate_limit``: requests of this key, shared by every
    gateway process; for a publishable key, per session, and ten times that per client
    address. Defaults: secret and write keys 1000/s, publishable keys 20/s."""

    name: str
    kind: KeyKind
    key: str | None = None
    key_sha256: Annotated[str, Meta(pattern=r"^[0-9a-fA-F]{64}$")] | None = None
    rate_limit: Rate | None = None

    def digest(self) -> bytes:
        """SHA-256 of the key: ``key_sha256`` as given, or the hash of ``key``."""
        if self.key_sha256 is not None:
            return bytes.fromhex(self.key_sha256)
        assert self.key is not None
        return hashlib.sha256(self.key.encode()).digest()

    def __post_init__(self) -> None:
        if (self.key is None) == (self.key_sha256 is None):
            raise ValueError("set exactly one of `key` or `key_sha256`")
        if self.key is not None and len(self.key) < 16:
            raise ValueError("`key` must be at least 16 characters")


class IdentityConfig(Base):
    verification: Literal["required", "optional", "off"] = "off"
    secret: str | None = None

    def __post_init__(self) -> None:
        if self.verification != "off" and not self.secret:
            raise ValueError("`secret` is required when verification is not 'off'")


class FieldConfig(Base):
    key: FieldKey
    type: FieldType
    unique: bool = False
    required: bool = False
    max_length: Annotated[int, Meta(ge=1, le=65535)] | None = None
    options: list[str] | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if self.type == "dropdown" and not self.options:
            raise ValueError("a dropdown field needs `options`")
        if self.type != "dropdown" and self.options is not None:
            raise ValueError("`options` is only for dropdown fields")
        if self.max_length is not None and self.type != "text":
            raise ValueError("`max_length` is only for text fields")
        if self.unique and self.type not in ("text", "email", "phone"):
            raise ValueError("only text, email and phone fields can be `unique`")


class FieldsConfig(Base):
    contact: list[FieldConfig] = msgspec.field(default_factory=list)
    company: list[FieldConfig] = msgspec.field(default_factory=list)


class CompatConfig(Base):
    smooch_app_id: str | None = None
    # Groove's servers send it in a URL: it alone names the tenant, so it must be long.
    groove_api_token: Annotated[str, Meta(min_length=16)] | None = None


class VendorConfig(Base):
    adapter: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]*$")]
    name: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]{0,62}$")] | None = None
    enabled: bool = True
    settings: dict[str, Any] = msgspec.field(default_factory=dict)


class ProfileConfig(Base):
    webhook_url: str
    template: str
    headline: str = "Profile"
    api_token: str = ""
    cache_ttl: Duration = Duration(3600.0)
    timeout: Duration = Duration(5.0)

    def __post_init__(self) -> None:
        if self.timeout <= 0 or self.cache_ttl <= 0:
            raise ValueError("`timeout` and `cache_ttl` must be more than 0")


class TenantFile(Base):
    id: Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
    name: str = ""
    unknown_fields: Literal["infer", "discard", "reject"] = "infer"
    default_region: Annotated[str, Meta(pattern=r"^[A-Z]{2}$")] | None = None
    session_ttl: Duration = Duration(30 * 86400.0)
    allowed_origins: list[str] = msgspec.field(default_factory=list)
    allow_private_networks: bool = False
    blocked_identifiers: list[str] = msgspec.field(default_factory=list)
    api_keys: list[ApiKeyConfig] = msgspec.field(default_factory=list)
    identity: IdentityConfig = msgspec.field(default_factory=IdentityConfig)
    fields: FieldsConfig = msgspec.field(default_factory=FieldsConfig)
    compat: CompatConfig = msgspec.field(default_factory=CompatConfig)
    vendors: list[VendorConfig] = msgspec.field(default_factory=list)
    profile: ProfileConfig | None = None

    def __post_init__(self) -> None:
        if self.session_ttl <= 0:
            raise ValueError("`session_ttl` must be more than 0")
