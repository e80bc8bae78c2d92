"""Use cases: what each API call does, between translating it and answering it.

Controllers decode a request, call one function here, encode its result. These functions
validate through the core (fields, dialects) and read and write through the store.
"""

from idgateway.service._records import (
    Outcome,
    apply,
    bare_id,
    check_smooch_app,
    contact_by,
    erase_contact,
    find_company,
    find_contact,
    get_company,
    get_contact,
    identify,
    merge_contacts,
    session_ref,
)
from idgateway.service._sessions import get_session, logout, mint_session, session_calls

__all__ = [
    "Outcome",
    "apply",
    "bare_id",
    "check_smooch_app",
    "contact_by",
    "erase_contact",
    "find_company",
    "find_contact",
    "get_company",
    "get_contact",
    "get_session",
    "identify",
    "logout",
    "merge_contacts",
    "mint_session",
    "session_calls",
    "session_ref",
]
