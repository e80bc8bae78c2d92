"""Field types, the per-tenant registry and validation (pure, no I/O)."""

from idgateway.fields._ops import IdentifyStep, LogoutStep, RecordOp, SessionStep, SetStep
from idgateway.fields._registry import (
    CUSTOM_PREFIX,
    READ_ONLY,
    STANDARD_KEYS,
    Entity,
    FieldSpec,
    Registry,
    build_registry,
    is_valid_key,
    registry_issues,
)
from idgateway.fields._types import COERCERS, parse_datetime, type_name
from idgateway.fields._validate import FieldInput, RecordChange, Violation, validate

__all__ = [
    "COERCERS",
    "CUSTOM_PREFIX",
    "READ_ONLY",
    "STANDARD_KEYS",
    "Entity",
    "FieldInput",
    "FieldSpec",
    "IdentifyStep",
    "LogoutStep",
    "RecordChange",
    "RecordOp",
    "Registry",
    "SessionStep",
    "SetStep",
    "Violation",
    "build_registry",
    "is_valid_key",
    "parse_datetime",
    "registry_issues",
    "type_name",
    "validate",
]
