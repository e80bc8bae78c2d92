"""What a call asks of the records, as pure data: the store turns it into one atomic step.

- :class:`RecordOp`: a validated change to one contact or company, found by its identifying
  values (or by ``target``, a record id the call already knows).
- :data:`SessionStep`: one Groove widget call on a session (SPEC §5.4), in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from idgateway.fields._registry import Registry
    from idgateway.fields._validate import RecordChange


@dataclass(frozen=True)
class RecordOp:
    """One record a write resolves and changes. ``registry`` says which entity it is."""

    change: RecordChange
    registry: Registry
    target: str | None = None  # bare ULID of a known record; otherwise resolve by lookups
    on_create: dict[str, str] | None = None  # values (hash field -> JSON) set only on create


@dataclass(frozen=True)
class SetStep:
    """``setContact`` / ``setCompany``: buffered while anonymous, else applied to the bound
    record."""

    op: RecordOp


@dataclass(frozen=True)
class IdentifyStep:
    """``identifyContact`` / ``identifyCompany``: resolve (or create) by one value, apply the
    session's buffer, bind the session."""

    op: RecordOp


@dataclass(frozen=True)
class LogoutStep:
    """``logout``: the session and everything buffered in it are deleted."""


SessionStep = SetStep | IdentifyStep | LogoutStep
