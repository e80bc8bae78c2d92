"""Use cases: what each API call does, between translating it and answering it.

Controllers decode a request, call one function here, encode its result. These functions
validate through the core (fields, dialects) and read and write through the store.
"""

from idgateway.service._bulk import (
    REJECTS_SUFFIX,
    ExportFailed,
    ExportProgress,
    ImportFailed,
    ImportProgress,
    ImportSummary,
    InferredField,
    ResetOutcome,
    Tally,
    detect_format,
    export_records,
    field_name,
    import_file,
    inferred_fields,
    reset_field,
)
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
    "REJECTS_SUFFIX",
    "ExportFailed",
    "ExportProgress",
    "ImportFailed",
    "ImportProgress",
    "ImportSummary",
    "InferredField",
    "Outcome",
    "RejectionItem",
    "RejectionPage",
    "ResetOutcome",
    "Tally",
    "apply",
    "bare_id",
    "check_smooch_app",
    "contact_by",
    "detect_format",
    "erase_contact",
    "export_records",
    "field_name",
    "find_company",
    "find_contact",
    "get_company",
    "get_contact",
    "get_session",
    "identify",
    "import_file",
    "inferred_fields",
    "ingest",
    "ingest_rejections",
    "logout",
    "merge_contacts",
    "mint_session",
    "reset_field",
    "session_calls",
    "session_ref",
    "smooch_app_user",
    "smooch_delete",
    "smooch_update",
]
