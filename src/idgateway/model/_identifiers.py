"""Normalisation of identifying values and the junk-identifier rule (SPEC §2.3).

Pure functions: each takes the raw value and returns the normalised one or raises
:class:`InvalidValue` with a machine code and a human message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import phonenumbers
from email_validator import EmailNotValidError, validate_email

if TYPE_CHECKING:
    from collections.abc import Iterable

_JUNK_WORDS = frozenset(
    {"anonymous", "guest", "null", "none", "undefined", "nan", "[object object]", "0", "-1"}
)
_DOMAIN = re.compile(
    r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.[a-z0-9-]{2,63}$"
)
# A conservative subset of valid addresses (ASCII dot-atoms, plain LDH labels, an alphabetic
# TLD) that email-validator always accepts unchanged: it skips the library on the hot path.
# Anything else — quoted parts, IDN, punycode, odd lengths — still goes through the library.
# tests/unit/test_identifiers.py proves the two agree on every address the pattern admits.
SIMPLE_EMAIL = re.compile(
    r"(?=[^@]{1,64}@)[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*"
    r"@(?:(?!xn--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)
_SPECIAL_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion"})
_HANDLE = re.compile(r"^[^\s/?#@]{1,255}$")


class InvalidValue(ValueError):
    """A value that cannot be normalised; ``code`` is the violation code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def is_junk(value: str, extra: Iterable[re.Pattern[str]] = ()) -> bool:
    """True for identifiers that name nobody: ``""``, ``anonymous``, ``0``, ``--`` ….

    ``extra`` are the tenant's own patterns, matched against the whole value.
    """
    stripped = value.strip()
    if not stripped:
        return True
    lowered = stripped.lower()
    # not lowered.strip("0-"): only zeros and dashes (the regex ^[0\-]+$ without its cost)
    if lowered in _JUNK_WORDS or not lowered.strip("0-"):
        return True
    return bool(extra) and any(p.fullmatch(stripped) for p in extra)


def normalize_email(value: str) -> str:
    """Trimmed, lower-cased, syntax-checked address (no DNS)."""
    candidate = value.strip().lower()
    if (
        len(candidate) <= 254
        and SIMPLE_EMAIL.fullmatch(candidate)
        and candidate.rsplit(".", 1)[1] not in _SPECIAL_TLDS
    ):
        return candidate
    try:
        # Syntax only (SPEC §3.1): no DNS; `.test` addresses are fine for staging tenants.
        validate_email(
            candidate, check_deliverability=False, allow_smtputf8=True, test_environment=True
        )
    except EmailNotValidError as exc:
        raise InvalidValue("email", f"not an email address: {exc}") from None
    return candidate


# The phone fast path: a number written with its country code ("+1 555 000 0123") whose digits
# phonenumbers would keep as they are. parse() then only drops the separators, finds the country
# code (codes are prefix-free), leaves the national number alone when the region's national
# prefix pattern does not match its start, and is_possible_number() checks its length against the
# region's possible lengths; E.164 is "+" and the digits. Everything else (no "+", other
# characters, a national prefix that could apply, a length the region does not list) goes to the
# library. tests/unit/test_identifiers.py proves the two agree on every number the path admits,
# for every country code.
_PLUS_NUMBER = re.compile(r"\+[0-9 ().-]{2,40}")
_SEPARATORS = str.maketrans("", "", " ().-")


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the fast path needs of one country calling code, read from phonenumbers' metadata."""

    lengths: frozenset[int]  # national number lengths is_possible_number accepts
    national_prefix: re.Pattern[str] | None


_PLANS: dict[str, _Plan | None] = {}


def _plan(code: str) -> _Plan | None:
    plan = _PLANS.get(code, False)
    if plan is not False:
        return plan  # type: ignore[return-value]
    found: _Plan | None = None
    if int(code) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
        region = phonenumbers.region_code_for_country_code(int(code))
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(int(code), region)
        desc = metadata.general_desc if metadata is not None else None
        if metadata is not None and desc is not None:
            lengths = frozenset(desc.possible_length or ()) | frozenset(
                desc.possible_length_local_only or ()
            )
            prefix = metadata.national_prefix_for_parsing
            found = _Plan(
                lengths=lengths - {-1}, national_prefix=re.compile(prefix) if prefix else None
            )
    _PLANS[code] = found
    return found


def _fast_e164(text: str) -> str | None:
    """The E.164 form phonenumbers would give, or ``None`` when only the library can tell."""
    if not _PLUS_NUMBER.fullmatch(text):
        return None
    digits = text[1:].translate(_SEPARATORS)
    if not digits or digits[0] == "0":
        return None
    for size in (1, 2, 3):  # country calling codes are prefix-free
        plan = _plan(digits[:size])
        if plan is not None:
            national = digits[size:]
            if len(national) not in plan.lengths:
                return None
            if plan.national_prefix is not None and plan.national_prefix.match(national):
                return None
            return "+" + digits
    return None


def normalize_phone(value: str, default_region: str | None) -> str:
    """E.164; a national number needs the tenant's ``default_region``."""
    text = value.strip()
    if not text:
        raise InvalidValue("phone", "empty phone number")
    fast = _fast_e164(text)
    if fast is not None:
        return fast
    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if default_region or text.startswith("+") else " (no default_region is set)"
        raise InvalidValue("phone", f"not a phone number: {exc._msg}{hint}") from None
    if not phonenumbers.is_possible_number(number):
        raise InvalidValue("phone", "not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_handle(value: str) -> str:
    """Social handle: trimmed, one leading ``@`` removed, lower-cased."""
    text = value.strip()
    if text.startswith("@"):
        text = text[1:]
    text = text.lower()
    if not _HANDLE.match(text):
        raise InvalidValue(
            "handle",
            "a handle is 1-255 characters without spaces, '@' (but one leading), '/', '?' or '#'",
        )
    return text


def normalize_domain(value: str) -> str:
    """Lower-cased host name: no scheme, path, port or leading ``www.``."""
    text = value.strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    else:
        text = re.split(r"[/?#]", text, maxsplit=1)[0]
        text = text.rsplit("@", 1)[-1].split(":", 1)[0]
    text = text.rstrip(".")
    while text.startswith("www."):
        text = text[4:]
    try:
        text = text.encode("idna").decode("ascii") if not text.isascii() else text
    except UnicodeError:
        raise InvalidValue("domain", "not a domain name") from None
    if not _DOMAIN.match(text):
        raise InvalidValue("domain", "not a domain name")
    return text
