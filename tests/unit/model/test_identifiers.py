"""Normalisation of identifying values and the junk-identifier rule (SPEC §2.3)."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from idgateway.model import (
    InvalidValue,
    is_junk,
    normalize_domain,
    normalize_email,
    normalize_handle,
    normalize_phone,
)

# --- emails -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("fred@example.com", "fred@example.com"),
        ("Fred@Example.COM", "fred@example.com"),
        ("  fred@example.com  ", "fred@example.com"),
        ("\tFRED.FLINTSTONE@EXAMPLE.COM\n", "fred.flintstone@example.com"),
        ("Fred+Tag@Sub.Example.org", "fred+tag@sub.example.org"),
    ],
)
def test_email_is_trimmed_and_lower_cased(raw: str, normal: str) -> None:
    assert normalize_email(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "fred",
        "fred@",
        "@example.com",
        "fred@@example.com",
        "fred flintstone@example.com",
        "Fred <fred@example.com>",
        "fred@example..com",
        "fred@-example.com",
        "fred@exa mple.com",
    ],
)
def test_email_syntax_is_checked(raw: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        normalize_email(raw)
    assert exc.value.code == "email"


def test_email_domain_is_not_looked_up_in_dns() -> None:
    # No such domain exists; "syntax only, no DNS" (§3.1) means it is still an address.
    assert normalize_email("Fred@No-Such-Domain-Idgw-4f1c9a.com") == (
        "fred@no-such-domain-idgw-4f1c9a.com"
    )


def test_email_at_a_reserved_test_domain_is_accepted_syntax_only() -> None:
    # §3.1: an address is checked for syntax only. `.test` (RFC 2606) is syntactically a
    # domain like any other, and it is where tenants keep their test users (SPEC §8 uses
    # `app.acme.test` itself).
    assert normalize_email("Fred@App.Acme.test") == "fred@app.acme.test"


# --- phones -----------------------------------------------------------------------------------


@pytest.mark.parametrize("region", [None, "US", "DE"])
def test_phone_already_in_e164_is_accepted_with_or_without_default_region(
    region: str | None,
) -> None:
    assert normalize_phone("+15558234312", region) == "+15558234312"


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(555) 823-4312", "US", "+15558234312"),
        ("555-823-4312", "US", "+15558234312"),
        ("555.823.4312", "US", "+15558234312"),
        ("1-555-823-4312", "US", "+15558234312"),
        ("  +1 (555) 823-4312  ", None, "+15558234312"),
        ("030 1234567", "DE", "+49301234567"),
        ("020 7946 0958", "GB", "+442079460958"),
        # an international number ignores the default region
        ("+49 30 1234567", "US", "+49301234567"),
    ],
)
def test_phone_becomes_e164(raw: str, region: str | None, e164: str) -> None:
    assert normalize_phone(raw, region) == e164


def test_national_phone_without_default_region_is_refused() -> None:
    with pytest.raises(InvalidValue) as exc:
        normalize_phone("(555) 823-4312", None)
    assert exc.value.code == "phone"


@pytest.mark.parametrize("raw", ["", "   ", "not a phone", "+1 555", "12", "+"])
def test_phone_that_is_not_a_number_is_refused(raw: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        normalize_phone(raw, "US")
    assert exc.value.code == "phone"


# --- social handles ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("fredflintstone", "fredflintstone"),
        ("@FredFlintstone", "fredflintstone"),
        ("  @Fred_F  ", "fred_f"),
        ("The-Flintstones", "the-flintstones"),
        ("\t@fred.f\n", "fred.f"),
    ],
)
def test_handle_is_trimmed_unprefixed_and_lower_cased(raw: str, normal: str) -> None:
    assert normalize_handle(raw) == normal


def test_handle_loses_one_leading_at_and_refuses_any_other() -> None:
    # "a leading @ removed"; an @ left after that is no handle (and would make
    # normalisation non-idempotent: "@@fred" -> "@fred" -> "fred").
    assert normalize_handle("@Fred") == "fred"
    for bad in ("@@Fred", "fr@ed"):
        with pytest.raises(InvalidValue) as raised:
            normalize_handle(bad)
        assert raised.value.code == "handle"


def test_handle_of_255_characters_is_accepted() -> None:
    assert normalize_handle("@" + "F" * 255) == "f" * 255


@pytest.mark.parametrize(
    "raw", ["", "   ", "@", " @ ", "fred flintstone", "a/b", "a?b", "a#b", "x" * 256]
)
def test_handle_that_cannot_be_a_handle_is_refused(raw: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        normalize_handle(raw)
    assert exc.value.code == "handle"


# --- domains ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("  example.com  ", "example.com"),
        ("www.example.com", "example.com"),
        ("WWW.Example.com", "example.com"),
        ("https://www.Example.com/path?q=1#top", "example.com"),
        ("http://example.com:8080/", "example.com"),
        ("HTTPS://Sub.Example.co.uk", "sub.example.co.uk"),
        ("example.com:443", "example.com"),
        ("example.com/about/team", "example.com"),
        ("example.com?utm=1", "example.com"),
        ("example.com.", "example.com"),
        # only a *leading* www. goes
        ("sub.www.example.com", "sub.www.example.com"),
        ("wwwexample.com", "wwwexample.com"),
        ("bücher.de", "xn--bcher-kva.de"),
    ],
)
def test_domain_is_lower_cased_without_scheme_path_port_or_www(raw: str, normal: str) -> None:
    assert normalize_domain(raw) == normal


def test_domain_never_keeps_a_leading_www() -> None:
    # §2.3: stored domains have no leading "www."; normalising twice must not change them.
    normal = normalize_domain("www.www.example.com")
    assert not normal.startswith("www.")
    assert normalize_domain(normal) == normal


@pytest.mark.parametrize(
    "raw", ["", "   ", "localhost", "not a domain", "http://", "-example.com", "example", "/path"]
)
def test_domain_that_is_not_a_host_name_is_refused(raw: str) -> None:
    with pytest.raises(InvalidValue) as exc:
        normalize_domain(raw)
    assert exc.value.code == "domain"


# --- junk identifiers -------------------------------------------------------------------------

JUNK_WORDS = [
    "anonymous",
    "guest",
    "null",
    "none",
    "undefined",
    "nan",
    "[object Object]",
    "0",
    "-1",
]


@pytest.mark.parametrize(
    "value",
    [
        "",
        " ",
        "\t\n  ",
        *JUNK_WORDS,
        "ANONYMOUS",
        "Guest",
        "NULL",
        "None",
        "UNDEFINED",
        "NaN",
        "[OBJECT OBJECT]",
        "[object object]",
        " Anonymous ",
        "\tnull\n",
        "00",
        "000000",
        "-",
        "--",
        "0-0",
        "-0-",
        "000-000",
        " 0 ",
    ],
)
def test_junk_identifier_is_detected(value: str) -> None:
    assert is_junk(value)


@pytest.mark.parametrize(
    "value",
    [
        "fred",
        "fred@example.com",
        "1",
        "10",
        "-2",
        "1-0",
        "0.0",
        "+0",
        "0x0",
        "nullify",
        "guest1",
        "anonymous-fred",
        "[object]",
        "noneofyourbusiness",
    ],
)
def test_real_identifier_is_not_junk(value: str) -> None:
    assert not is_junk(value)


def test_tenant_patterns_add_junk_matched_against_the_whole_value() -> None:
    patterns = [re.compile(r"test@example\.com", re.IGNORECASE), re.compile(r"nobody-.*")]
    assert is_junk("test@example.com", patterns)
    assert is_junk("TEST@Example.com", patterns)
    assert is_junk("  test@example.com ", patterns)
    assert is_junk("nobody-42", patterns)
    # whole value, not a substring
    assert not is_junk("atest@example.com", patterns)
    assert not is_junk("test@example.community", patterns)
    assert not is_junk("somebody-42", patterns)
    # without the tenant patterns these are ordinary identifiers
    assert not is_junk("test@example.com")
    assert not is_junk("nobody-42")


# --- properties -------------------------------------------------------------------------------

_pad = st.sampled_from(["", " ", "  ", "\t", "\n", " \t "])
_label = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?", fullmatch=True).filter(
    # "www" would be stripped as a prefix (see test_domain_never_keeps_a_leading_www);
    # "xn--" labels are IDNA A-labels, which need valid punycode
    lambda s: s.lower() != "www" and s[2:4] != "--"
)
_tld = st.sampled_from(["com", "org", "net", "io", "de", "co.uk", "COM", "Org"])


@st.composite
def _host(draw: st.DrawFn) -> str:
    labels = draw(st.lists(_label, min_size=1, max_size=3))
    return ".".join([*labels, draw(_tld)])


@st.composite
def _raw_email(draw: st.DrawFn) -> str:
    local = draw(
        st.from_regex(r"[A-Za-z0-9_+-]{1,20}(\.[A-Za-z0-9_+-]{1,10}){0,2}", fullmatch=True)
    )
    return draw(_pad) + local + "@" + draw(_host()) + draw(_pad)


@given(_raw_email())
def test_email_normalisation_is_idempotent(raw: str) -> None:
    normal = normalize_email(raw)
    assert normal == raw.strip().lower()
    assert normalize_email(normal) == normal


@given(
    pad=_pad,
    at=st.sampled_from(["", "@"]),
    core=st.from_regex(r"[A-Za-z0-9_.-]{1,30}", fullmatch=True),
)
def test_handle_normalisation_is_idempotent(pad: str, at: str, core: str) -> None:
    normal = normalize_handle(pad + at + core + pad)
    assert normal == core.lower()
    assert normalize_handle(normal) == normal


@given(
    pad=_pad,
    scheme=st.sampled_from(["", "http://", "https://", "HTTPS://"]),
    www=st.sampled_from(["", "www.", "WWW."]),
    host=_host(),
    tail=st.sampled_from(["", "/", "/path", ":8080", ":443/a/b?q=1", "?x=1", "#frag", "/a?b#c"]),
)
def test_domain_normalisation_is_idempotent(
    pad: str, scheme: str, www: str, host: str, tail: str
) -> None:
    normal = normalize_domain(pad + scheme + www + host + tail + pad)
    assert normal == host.lower()
    assert normalize_domain(normal) == normal


@given(
    area=st.integers(200, 999),
    exchange=st.integers(200, 999),
    line=st.integers(0, 9999),
    shape=st.sampled_from(
        ["+1{a}{e}{l}", "+1 ({a}) {e}-{l}", "({a}) {e}-{l}", "{a}.{e}.{l}", "1-{a}-{e}-{l}"]
    ),
    pad=_pad,
)
def test_us_phone_normalisation_is_idempotent(
    area: int, exchange: int, line: int, shape: str, pad: str
) -> None:
    raw = pad + shape.format(a=area, e=exchange, l=f"{line:04d}") + pad
    normal = normalize_phone(raw, "US")
    assert normal == f"+1{area}{exchange}{line:04d}"
    assert normalize_phone(normal, "US") == normal
    assert normalize_phone(normal, None) == normal


_PNF = phonenumbers.PhoneNumberFormat


@given(
    region=st.sampled_from(sorted(phonenumbers.SUPPORTED_REGIONS)),
    fmt=st.sampled_from([_PNF.NATIONAL, _PNF.INTERNATIONAL, _PNF.E164]),
)
def test_phone_normalisation_is_idempotent_in_every_region(region: str, fmt: int) -> None:
    number = phonenumbers.example_number(region)
    assert number is not None
    e164 = phonenumbers.format_number(number, _PNF.E164)
    normal = normalize_phone(phonenumbers.format_number(number, fmt), region)
    assert normal == e164
    assert normalize_phone(normal, None) == normal


@st.composite
def _any_casing(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if f else c.lower() for c, f in zip(word, flips, strict=True))


@given(st.sampled_from(JUNK_WORDS).flatmap(_any_casing), _pad, _pad)
def test_junk_detection_is_case_insensitive(word: str, left: str, right: str) -> None:
    assert is_junk(left + word + right)


@given(st.text(alphabet="0-", min_size=1, max_size=40), _pad, _pad)
def test_strings_of_only_zeros_and_dashes_are_junk(value: str, left: str, right: str) -> None:
    assert is_junk(left + value + right)


@given(st.text(alphabet=" \t\n\r\f\v\u00a0\u2003\u3000", max_size=20))
def test_empty_or_whitespace_only_is_junk(value: str) -> None:
    assert is_junk(value)


@given(st.integers(min_value=1, max_value=10**18))
def test_positive_integers_are_not_junk(n: int) -> None:
    assert not is_junk(str(n))


# --- the fast path of email syntax agrees with email-validator ------------------------------

from email_validator import EmailNotValidError, validate_email  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from idgateway.model._identifiers import SIMPLE_EMAIL  # noqa: E402


def _library(address: str) -> str | None:
    try:
        return validate_email(
            address, check_deliverability=False, allow_smtputf8=True, test_environment=True
        ).normalized
    except EmailNotValidError:
        return None


_ATOM = st.from_regex(r"[a-z0-9_+-]{1,12}", fullmatch=True)
_LABEL = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_SIMPLE_ADDRESSES = st.builds(
    lambda local, labels, tld: ".".join(local) + "@" + ".".join([*labels, tld]),
    st.lists(_ATOM, min_size=1, max_size=3),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.from_regex(r"[a-z]{2,8}", fullmatch=True),
).filter(lambda a: SIMPLE_EMAIL.fullmatch(a) is not None)


@settings(max_examples=300)
@given(_SIMPLE_ADDRESSES)
def test_every_address_of_the_fast_path_is_one_the_library_accepts_unchanged(address: str) -> None:
    expected = _library(address)
    special = address.rsplit(".", 1)[1] in {"arpa", "invalid", "local", "localhost", "onion"}
    if special:
        assert expected is None
        with pytest.raises(InvalidValue):
            normalize_email(address)
    else:
        assert expected == address
        assert normalize_email(address) == address


@pytest.mark.parametrize(
    "address",
    [
        "a@x.invalid",
        "a@b.local",
        "a@xn--bcher-kva.ch",
        "a..b@x.com",
        ".a@x.com",
        "a@-x.com",
        "a@x-.com",
        "a@x.c",
        "a@x.123",
        "x" * 65 + "@x.com",
        "a@" + "b" * 64 + ".com",
    ],
)
def test_addresses_outside_the_fast_path_get_the_library_verdict(address: str) -> None:
    try:
        accepted = normalize_email(address) == address.lower()
    except InvalidValue:
        accepted = False
    assert accepted == (_library(address) is not None)


# --- the phone fast path agrees with phonenumbers ---------------------------------------------

from idgateway.model._identifiers import _fast_e164  # noqa: E402

_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _phone_library(text: str) -> str | None:
    """What normalize_phone answered before the fast path: the library's verdict alone."""
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@st.composite
def _plus_numbers(draw: st.DrawFn) -> str:
    """``+<country code><digits>`` with separators anywhere, the digits' count near the lengths
    the country's numbers have (so both sides of every length boundary are drawn)."""
    code = draw(st.sampled_from(_CODES))
    size = draw(st.integers(min_value=0, max_value=18))
    digits = draw(st.text(alphabet="0123456789", min_size=size, max_size=size))
    text = "+"
    for ch in str(code) + digits:
        text += draw(st.sampled_from(["", "", "", " ", "-", ".", "(", ")", "  "])) + ch
    return text + draw(st.sampled_from(["", "", " ", ")", "-"]))


@settings(max_examples=3000, deadline=None)
@given(_plus_numbers())
def test_every_number_of_the_phone_fast_path_gets_the_library_answer(text: str) -> None:
    fast = _fast_e164(text)
    if fast is not None:
        assert fast == _phone_library(text)


@settings(max_examples=500, deadline=None)
@given(_plus_numbers())
def test_normalize_phone_answers_as_the_library_for_international_numbers(text: str) -> None:
    expected = _phone_library(text)
    try:
        got: str | None = normalize_phone(text, None)
    except InvalidValue:
        got = None
    assert got == expected


def _example_numbers() -> list[str]:
    """phonenumbers' own example of every type of number of every region, as E.164 and in the
    international format people write ("+44 20 7946 0958")."""
    out = []
    types = [
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
        phonenumbers.PhoneNumberType.VOIP,
    ]
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in types:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is None:
                continue
            for fmt in (
                phonenumbers.PhoneNumberFormat.E164,
                phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            ):
                out.append(phonenumbers.format_number(number, fmt))
    return out


def test_the_phone_fast_path_agrees_on_every_example_number_of_every_region() -> None:
    corpus = _example_numbers()
    taken = 0
    for text in corpus:
        fast = _fast_e164(text)
        if fast is not None:
            taken += 1
            assert fast == _phone_library(text), text
        assert normalize_phone(text, None) == _phone_library(text), text
    # the path is worth having: it answers for most numbers written with their country code
    assert len(corpus) > 1000
    assert taken > 0.8 * len(corpus)


@pytest.mark.parametrize(
    "text",
    [
        "+44 020 7946 0958",  # a national prefix after the country code: the library drops it
        "+39 06 6982 0000",  # Italy keeps its leading zero
        "+1 (555) 000-0123",
        "+1 1555 000 0123",  # US national prefix after the country code
        "+7 8 495 123 4567",
        "+54 9 11 1234 5678",  # Argentina's mobile token
        "+52 1 55 1234 5678",
        "+800 1234 5678",  # non-geographic
        "+0 555 000 0123",
        "+999 123",
        "+1 555",
        "+15550000123 ext 5",
        "＋1 555 000 0123",
    ],
)
def test_phone_numbers_near_the_fast_path_get_the_library_answer(text: str) -> None:
    try:
        got: str | None = normalize_phone(text, None)
    except InvalidValue:
        got = None
    assert got == _phone_library(text.strip())


# --- is_junk without its regex answers as it did with it ---------------------------------------

_OLD_ZEROS_AND_DASHES = re.compile(r"^[0\-]+$")
_JUNK = {"anonymous", "guest", "null", "none", "undefined", "nan", "[object object]", "0", "-1"}


def _is_junk_reference(value: str, extra: tuple[re.Pattern[str], ...] = ()) -> bool:
    stripped = value.strip()
    if not stripped:
        return True
    lowered = stripped.lower()
    if lowered in _JUNK or _OLD_ZEROS_AND_DASHES.match(lowered):
        return True
    return any(p.fullmatch(stripped) for p in extra)


@settings(max_examples=1000)
@given(
    st.one_of(
        st.text(max_size=12),
        st.text(alphabet="0-\n \t", max_size=12),
        st.text(alphabet="0-aX\n", max_size=6),
    ),
    st.sampled_from([(), (re.compile(r"test-\d+"),), (re.compile(r"(?i)x+"), re.compile("a"))]),
)
def test_is_junk_answers_as_the_regex_did(value: str, extra: tuple[re.Pattern[str], ...]) -> None:
    assert is_junk(value, extra) == _is_junk_reference(value, extra)
