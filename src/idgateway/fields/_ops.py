"""A change to one record, in the shape the store's write scripts take (pure data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from idgateway.model import new_ulid

if TYPE_CHECKING:
    from idgateway.fields._registry import Registry
    from idgateway.fields._validate import RecordChange

Namespace = Literal["c", "o"]  # contacts, companies


@dataclass(frozen=True)
class RecordOp:
    """One record a write script call resolves and changes."""

    ns: Namespace
    change: RecordChange
    registry: Registry
    target: str | None = None  # bare ULID of a known record; otherwise resolve by lookups
    on_create: dict[str, str] | None = None  # values set only if the record is created

    def to_json(self) -> dict[str, Any]:
        c = self.change
        op: dict[str, Any] = {
            "ns": self.ns,
            "new_id": new_ulid(),
            # tuples: msgspec writes them as JSON arrays, as it would lists
            "lookups": c.lookups,
            "set": c.sets,
            "unset": c.unsets,
            "infer": c.infer,
            "required": c.required,
            "spec": msgspec.Raw(self.registry.index_spec),
        }
        if c.tags_add:
            op["tags_add"] = c.tags_add
        if self.target:
            op["target"] = self.target
        if self.on_create:
            op["on_create"] = self.on_create
        return op
