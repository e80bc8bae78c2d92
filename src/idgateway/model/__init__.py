"""The canonical model: ids, timestamps, identifier normalisation."""

from idgateway.model._flatten import GROOVE_RESERVED, flatten_record
from idgateway.model._identifiers import (
    InvalidValue,
    is_junk,
    normalize_domain,
    normalize_email,
    normalize_handle,
    normalize_phone,
)
from idgateway.model._ids import (
    COMPANY_PREFIX,
    CONTACT_PREFIX,
    MINTED_SESSION_PREFIX,
    format_epoch_ms,
    format_timestamp,
    is_minted_session,
    new_session_id,
    new_ulid,
    now_ms,
    parse_record_id,
)
from idgateway.model._records import Company, Contact
from idgateway.model._sessions import Session

__all__ = [
    "COMPANY_PREFIX",
    "CONTACT_PREFIX",
    "GROOVE_RESERVED",
    "MINTED_SESSION_PREFIX",
    "Company",
    "Contact",
    "InvalidValue",
    "Session",
    "flatten_record",
    "format_epoch_ms",
    "format_timestamp",
    "is_junk",
    "is_minted_session",
    "new_session_id",
    "new_ulid",
    "normalize_domain",
    "normalize_email",
    "normalize_handle",
    "normalize_phone",
    "now_ms",
    "parse_record_id",
]
