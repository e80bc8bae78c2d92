"""Use cases: what each API call does, between translating it and answering it.

Controllers decode a request, call one function here, encode its result. These functions
validate through the core (fields, dialects) and read and write through the store.
"""

from idgateway.service._ingest import (
    RejectionItem,
    RejectionPage,
    ingest,
    ingest_rejections,
)
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
from idgateway.service._smooch import smooch_app_user, smooch_delete, smooch_update

__all__ = [
    "Outcome",
    "RejectionItem",
    "RejectionPage",
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
    "ingest",
    "ingest_rejections",
    "logout",
    "merge_contacts",
    "mint_session",
    "session_calls",
    "session_ref",
    "smooch_app_user",
    "smooch_delete",
    "smooch_update",
]
