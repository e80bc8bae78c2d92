"""Profile rendering from the customer's webhook with Liquid (SPEC §7)."""

from idgateway.profiles._liquid import TemplateProblem, compile_source, syntax_error
from idgateway.profiles._service import (
    ProfileData,
    ProfileService,
    RenderedProfile,
    render_context,
    render_profile,
)
from idgateway.profiles._webhook import check_flat, fetch_profile, webhook_request_url

__all__ = [
    "ProfileData",
    "ProfileService",
    "RenderedProfile",
    "TemplateProblem",
    "check_flat",
    "compile_source",
    "fetch_profile",
    "render_context",
    "render_profile",
    "syntax_error",
    "webhook_request_url",
]
