"""``load_settings`` on config trees written to ``tmp_path`` (SPEC §8).

What is proved here: the shipped example and the SPEC's own example load; defaults are the
SPEC's; durations, ``${ENV}`` and relative paths behave as §8 says; every kind of mistake an
operator can make is refused with a :class:`ConfigIssue` naming the file and the ``$.key.path``,
and all of them are reported together in one :class:`ConfigError`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from idgateway.config import load_config as load_settings
from idgateway.settings import ConfigError, ConfigIssue, Settings

EXAMPLE_CONFIG = Path(__file__).resolve().parents[3] / "config" / "gateway.toml"

SECRET_A = "sk_test_unit_a_0123456789abcdef"
SECRET_B = "sk_test_unit_b_0123456789abcdef"
SHA_OF_OTHER = hashlib.sha256(b"sk_test_unit_hashed_0123456789").hexdigest()

DEFAULT_SCHEDULE = [5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400]


# --- helpers ----------------------------------------------------------------------------------


def tenant_toml(
    tenant_id: str = "acme",
    *,
    key: str = SECRET_A,
    top: str = "",
    api_key_extra: str = "",
    tables: str = "",
) -> str:
    """A valid tenant file, with room for extra top-level keys, api key keys and tables."""
    return (
        f'id = "{tenant_id}"\n{top}\n'
        f'[[api_keys]]\nname = "backend"\nkind = "secret"\nkey = "{key}"\n{api_key_extra}\n'
        f"{tables}\n"
    )


def make_tree(root: Path, gateway: str = "", tenants: dict[str, str] | None = None) -> Path:
    """``root/gateway.toml`` plus ``root/tenants/<name>.toml``; returns the gateway file."""
    root.mkdir(parents=True, exist_ok=True)
    folder = root / "tenants"
    folder.mkdir(exist_ok=True)
    for name, text in (tenants if tenants is not None else {"acme": tenant_toml()}).items():
        (folder / f"{name}.toml").write_text(text, encoding="utf-8")
    path = root / "gateway.toml"
    path.write_text(gateway, encoding="utf-8")
    return path


def load(path: Path) -> Settings:
    return load_settings(path)


def issues_of(path: Path) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert info.value.issues, "a ConfigError must list at least one issue"
    return info.value.issues


def same_file(issue: ConfigIssue, file: Path) -> bool:
    return Path(issue.file).resolve() == file.resolve()


def names_key(issue: ConfigIssue, key_path: str) -> bool:
    """The issue points at ``key_path``: either as its path, or (for an unknown key, which
    msgspec reports on the table holding it) as the table's path plus the key's name."""
    if issue.path == key_path:
        return True
    parent, _, leaf = key_path.rpartition(".")
    return issue.path == parent and leaf in issue.message


def find_issue(issues: list[ConfigIssue], file: Path, key_path: str) -> ConfigIssue:
    for issue in issues:
        if same_file(issue, file) and names_key(issue, key_path):
            return issue
    raise AssertionError(f"no issue for {file} {key_path} in {[str(i) for i in issues]}")


def tenant_file(root: Path, name: str = "acme") -> Path:
    return root / "tenants" / f"{name}.toml"


# --- whole configs that must load -------------------------------------------------------------


def test_shipped_example_config_loads() -> None:
    settings = load(EXAMPLE_CONFIG)

    assert list(settings.tenants) == ["example"]
    example = settings.tenants["example"]
    assert {k.kind for k in example.api_keys} == {"secret", "publishable"}
    assert [f.key for f in example.fields.contact][:2] == ["plan", "customer_number"]
    assert settings.gateway.redis.url == ""
    # "../var/valkey" is relative to config/, not to the working directory
    expected_data_dir = (EXAMPLE_CONFIG.parent / ".." / "var" / "valkey").resolve()
    assert Path(settings.gateway.redis.data_dir) == expected_data_dir


SPEC_GATEWAY = """
[server]
host = "127.0.0.1"
port = 8080
max_body_bytes = 32768

[redis]
url = ""
data_dir = "var/valkey"
cluster = false
appendfsync = "always"

[logging]
format = "auto"
level = "info"

[delivery]
retry_schedule = ["5s", "30s", "2m", "10m", "30m", "1h", "2h", "4h", "8h", "12h", "24h"]
timeout = "15s"
concurrency = 64

[tenants]
dir = "tenants"
"""

SPEC_TENANT = """
id = "acme"
name = "Acme Inc."
unknown_fields = "infer"
default_region = "US"
session_ttl = "30d"
allowed_origins = ["https://app.acme.test"]
allow_private_networks = false

[[api_keys]]
name = "backend"
kind = "secret"
key = "${ACME_SECRET_KEY}"

[identity]
verification = "required"
secret = "${ACME_IDENTITY_SECRET}"

[[fields.contact]]
key = "plan"
type = "dropdown"
options = ["Free", "Support", "Marketing", "All in One"]

[[fields.contact]]
key = "customer_number"
type = "text"
unique = true

[[fields.company]]
key = "tier"
type = "text"

[compat]
smooch_app_id = "5963c0d619a30a2e00de36b8"
groove_api_token = "${ACME_GROOVE_TOKEN}"

[[vendors]]
adapter = "smooch"
[vendors.settings]
base_url = "https://api.smooch.io"
app_id = "5963c0d619a30a2e00de36b8"
key_id = "app_5963c0d619a30a2e00de36b9"
secret = "${ACME_SMOOCH_SECRET}"

[profile]
headline = "Billing"
webhook_url = "https://app.acme.test/groove/profile"
api_token = "${ACME_PROFILE_TOKEN}"
template = "../templates/acme-profile.liquid"
cache_ttl = "1h"
timeout = "5s"
"""


def test_spec_section_8_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "ACME_SECRET_KEY": "sk_live_spec_example_0123456789",
        "ACME_IDENTITY_SECRET": "identity-secret",
        "ACME_GROOVE_TOKEN": "groove-token-0123456789abcdef",
        "ACME_SMOOCH_SECRET": "smooch-secret",
        "ACME_PROFILE_TOKEN": "profile-token",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    root = tmp_path / "config"
    path = make_tree(root, SPEC_GATEWAY, {"acme": SPEC_TENANT})
    (root / "templates").mkdir()
    (root / "templates" / "acme-profile.liquid").write_text("<p>{{ email }}</p>")

    settings = load(path)

    acme = settings.tenants["acme"]
    assert acme.name == "Acme Inc."
    assert acme.api_keys[0].key == env["ACME_SECRET_KEY"]
    assert acme.identity.verification == "required"
    assert acme.identity.secret == env["ACME_IDENTITY_SECRET"]
    assert acme.compat.groove_api_token == env["ACME_GROOVE_TOKEN"]
    assert acme.vendors[0].settings["secret"] == env["ACME_SMOOCH_SECRET"]
    assert acme.profile is not None
    assert acme.profile.api_token == env["ACME_PROFILE_TOKEN"]
    assert acme.profile.cache_ttl == pytest.approx(3600)
    assert acme.profile.timeout == pytest.approx(5)
    assert Path(acme.profile.template) == (root / "templates" / "acme-profile.liquid").resolve()
    assert acme.session_ttl == pytest.approx(30 * 86400)
    assert settings.tenant_files["acme"].resolve() == tenant_file(root).resolve()


def test_defaults_when_gateway_file_is_empty(tmp_path: Path) -> None:
    settings = load(make_tree(tmp_path, ""))

    gw = settings.gateway
    assert gw.server.host == "127.0.0.1"
    assert gw.server.port == 8080
    assert gw.server.max_body_bytes == 32768
    assert gw.redis.url == ""
    assert gw.redis.cluster is False
    assert gw.redis.appendfsync == "always"
    assert Path(gw.redis.data_dir) == (tmp_path / "var" / "valkey").resolve()
    assert gw.logging.format == "auto"
    assert gw.logging.level == "info"
    assert [float(d) for d in gw.delivery.retry_schedule] == pytest.approx(DEFAULT_SCHEDULE)
    assert gw.delivery.timeout == pytest.approx(15)
    assert gw.delivery.concurrency == 64
    assert Path(gw.tenants.dir) == (tmp_path / "tenants").resolve()


def test_tenant_defaults(tmp_path: Path) -> None:
    acme = load(make_tree(tmp_path)).tenants["acme"]

    assert acme.unknown_fields == "infer"
    assert acme.session_ttl == pytest.approx(30 * 86400)
    assert acme.allow_private_networks is False
    assert acme.allowed_origins == []
    assert acme.vendors == []
    assert acme.profile is None


# --- durations --------------------------------------------------------------------------------

GOOD_DURATIONS = [
    ("250ms", 0.25),
    ("15s", 15),
    ("2m", 120),
    ("1h", 3600),
    ("12h", 43200),
    ("1d", 86400),
    ("30d", 30 * 86400),
]


@pytest.mark.parametrize(("text", "seconds"), GOOD_DURATIONS)
def test_duration_units_are_parsed_to_seconds(tmp_path: Path, text: str, seconds: float) -> None:
    gateway = f'[delivery]\ntimeout = "{text}"\nretry_schedule = ["{text}", "1s"]\n'
    tenants = {"acme": tenant_toml(top=f'session_ttl = "{text}"')}

    settings = load(make_tree(tmp_path, gateway, tenants))

    assert settings.gateway.delivery.timeout == pytest.approx(seconds)
    assert [float(d) for d in settings.gateway.delivery.retry_schedule] == pytest.approx(
        [seconds, 1]
    )
    assert settings.tenants["acme"].session_ttl == pytest.approx(seconds)


BAD_DURATIONS = ['"15"', '"15x"', '"s"', '"-5s"', '"1 hour"', '""', '"5 s s"', "15", "true"]


@pytest.mark.parametrize("value", BAD_DURATIONS)
def test_bad_duration_in_gateway_file_is_refused_with_key_path(tmp_path: Path, value: str) -> None:
    path = make_tree(tmp_path, f"[delivery]\ntimeout = {value}\n")

    issue = find_issue(issues_of(path), path, "$.delivery.timeout")

    assert issue.message


def test_bad_duration_in_retry_schedule_names_the_item(tmp_path: Path) -> None:
    path = make_tree(tmp_path, '[delivery]\nretry_schedule = ["5s", "30 seconds", "2m"]\n')

    find_issue(issues_of(path), path, "$.delivery.retry_schedule[1]")


@pytest.mark.parametrize("value", ['"30"', '"3w"', '"d"'])
def test_bad_duration_in_tenant_file_is_refused_with_key_path(tmp_path: Path, value: str) -> None:
    root = tmp_path
    make_tree(root, "", {"acme": tenant_toml(top=f"session_ttl = {value}")})

    find_issue(issues_of(root / "gateway.toml"), tenant_file(root), "$.session_ttl")


def test_bad_duration_in_profile_is_refused_with_key_path(tmp_path: Path) -> None:
    (tmp_path / "tenants").mkdir()
    (tmp_path / "tenants" / "p.liquid").write_text("{{ email }}")
    tables = (
        '[profile]\nwebhook_url = "https://app.acme.test/p"\ntemplate = "p.liquid"\n'
        'cache_ttl = "1 hour"\n'
    )
    path = make_tree(tmp_path, "", {"acme": tenant_toml(tables=tables)})

    find_issue(issues_of(path), tenant_file(tmp_path), "$.profile.cache_ttl")


# --- ${ENV} interpolation ---------------------------------------------------------------------


def test_env_references_are_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDGW_UNIT_SECRET", SECRET_B)
    monkeypatch.setenv("IDGW_UNIT_SUFFIX", "Inc.")
    monkeypatch.setenv("IDGW_UNIT_REDIS", "redis://127.0.0.1:6390/0")
    tenants = {
        "acme": tenant_toml(key="${IDGW_UNIT_SECRET}", top='name = "Acme ${IDGW_UNIT_SUFFIX}"')
    }

    settings = load(make_tree(tmp_path, '[redis]\nurl = "${IDGW_UNIT_REDIS}"\n', tenants))

    assert settings.tenants["acme"].api_keys[0].key == SECRET_B
    assert settings.tenants["acme"].name == "Acme Inc."
    assert settings.gateway.redis.url == "redis://127.0.0.1:6390/0"


def test_an_env_reference_may_give_a_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``${NAME:-default}``: the default when NAME is unset, as in the shell (the example
    tenant's profile webhook names the gateway's own port as ``${IDGW_PORT:-8080}``)."""
    monkeypatch.delenv("IDGW_UNIT_UNSET", raising=False)
    monkeypatch.setenv("IDGW_UNIT_SET", "9000")
    gateway = '[redis]\nurl = "redis://h:${IDGW_UNIT_SET:-1}/${IDGW_UNIT_UNSET:-0}"\n'
    tenants = {"acme": tenant_toml(top='name = "${IDGW_UNIT_UNSET:-}Acme"')}

    settings = load(make_tree(tmp_path, gateway, tenants))

    assert settings.gateway.redis.url == "redis://h:9000/0"
    assert settings.tenants["acme"].name == "Acme"


def test_the_example_profile_webhook_follows_the_port_serve_listens_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("IDGW_PORT", raising=False)
    default = load(EXAMPLE_CONFIG).tenants["example"].profile
    monkeypatch.setenv("IDGW_PORT", "9123")
    moved = load(EXAMPLE_CONFIG).tenants["example"].profile

    assert default is not None and moved is not None
    assert default.webhook_url == "http://127.0.0.1:8080/compat/groove/custom-profile"
    assert moved.webhook_url == "http://127.0.0.1:9123/compat/groove/custom-profile"


def test_missing_env_variable_in_tenant_names_it_file_and_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDGW_UNIT_MISSING", raising=False)
    path = make_tree(tmp_path, "", {"acme": tenant_toml(key="${IDGW_UNIT_MISSING}")})

    issue = find_issue(issues_of(path), tenant_file(tmp_path), "$.api_keys[0].key")

    assert "IDGW_UNIT_MISSING" in issue.message


def test_missing_env_variable_in_gateway_names_it_file_and_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDGW_UNIT_NO_URL", raising=False)
    path = make_tree(tmp_path, '[redis]\nurl = "redis://${IDGW_UNIT_NO_URL}/0"\n')

    issue = find_issue(issues_of(path), path, "$.redis.url")

    assert "IDGW_UNIT_NO_URL" in issue.message


def test_every_missing_env_variable_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDGW_UNIT_GONE_1", raising=False)
    monkeypatch.delenv("IDGW_UNIT_GONE_2", raising=False)
    tables = '[identity]\nverification = "required"\nsecret = "${IDGW_UNIT_GONE_2}"\n'
    path = make_tree(tmp_path, "", {"acme": tenant_toml(key="${IDGW_UNIT_GONE_1}", tables=tables)})

    issues = issues_of(path)

    acme = tenant_file(tmp_path)
    assert "IDGW_UNIT_GONE_1" in find_issue(issues, acme, "$.api_keys[0].key").message
    assert "IDGW_UNIT_GONE_2" in find_issue(issues, acme, "$.identity.secret").message


# --- relative paths ---------------------------------------------------------------------------


def test_relative_paths_resolve_from_the_folder_of_the_file_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # root/conf/gateway.toml names data_dir and tenants.dir (relative to root/conf);
    # root/t/acme.toml names its template (relative to root/t, not root/conf, not the cwd).
    conf, tenants_dir = tmp_path / "conf", tmp_path / "t"
    conf.mkdir()
    (tenants_dir / "tpl").mkdir(parents=True)
    (tenants_dir / "tpl" / "acme.liquid").write_text("{{ email }}")
    tables = '[profile]\nwebhook_url = "https://app.acme.test/p"\ntemplate = "tpl/acme.liquid"\n'
    (tenants_dir / "acme.toml").write_text(tenant_toml(tables=tables))
    gateway = conf / "gateway.toml"
    gateway.write_text('[redis]\ndata_dir = "data/valkey"\n[tenants]\ndir = "../t"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    settings = load(Path("..") / "conf" / "gateway.toml")

    assert Path(settings.gateway.redis.data_dir) == (conf / "data" / "valkey").resolve()
    assert Path(settings.gateway.tenants.dir) == tenants_dir.resolve()
    profile = settings.tenants["acme"].profile
    assert profile is not None
    assert Path(profile.template) == (tenants_dir / "tpl" / "acme.liquid").resolve()


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "abs" / "valkey"
    tenants_dir = tmp_path / "abs-tenants"
    tenants_dir.mkdir()
    template = tmp_path / "abs.liquid"
    template.write_text("{{ email }}")
    tables = f'[profile]\nwebhook_url = "https://app.acme.test/p"\ntemplate = "{template}"\n'
    (tenants_dir / "acme.toml").write_text(tenant_toml(tables=tables))
    gateway = tmp_path / "conf" / "gateway.toml"
    gateway.parent.mkdir()
    gateway.write_text(f'[redis]\ndata_dir = "{data_dir}"\n[tenants]\ndir = "{tenants_dir}"\n')

    settings = load(gateway)

    assert Path(settings.gateway.redis.data_dir) == data_dir
    assert Path(settings.gateway.tenants.dir) == tenants_dir
    profile = settings.tenants["acme"].profile
    assert profile is not None
    assert Path(profile.template) == template


def test_missing_template_is_an_error_with_file_and_path(tmp_path: Path) -> None:
    tables = '[profile]\nwebhook_url = "https://app.acme.test/p"\ntemplate = "nope.liquid"\n'
    path = make_tree(tmp_path, "", {"acme": tenant_toml(tables=tables)})

    issue = find_issue(issues_of(path), tenant_file(tmp_path), "$.profile.template")

    assert "nope.liquid" in issue.message


# --- unknown keys -----------------------------------------------------------------------------

GATEWAY_UNKNOWN = [
    ("bogus = 1\n", "$.bogus"),
    ("[server]\nprot = 8080\n", "$.server.prot"),
    ('[redis]\ndatadir = "x"\n', "$.redis.datadir"),
    ("[logging]\ncolour = true\n", "$.logging.colour"),
    ("[delivery]\nretries = 3\n", "$.delivery.retries"),
    ('[tenants]\npath = "tenants"\n', "$.tenants.path"),
]


@pytest.mark.parametrize(("text", "key_path"), GATEWAY_UNKNOWN)
def test_unknown_key_in_gateway_file_is_an_error(tmp_path: Path, text: str, key_path: str) -> None:
    path = make_tree(tmp_path, text)

    find_issue(issues_of(path), path, key_path)


GIST = (
    '[[vendors]]\nadapter = "gist"\n{vendor}\n'
    '[vendors.settings]\nbase_url = "https://api.getgist.com"\ntoken = "t"\n'
)

TENANT_UNKNOWN = [
    pytest.param(tenant_toml(top='colour = "red"'), "$.colour", id="top-level"),
    pytest.param(tenant_toml(api_key_extra='scope = "all"'), "$.api_keys[0].scope", id="api_keys"),
    pytest.param(
        tenant_toml(tables='[identity]\nverification = "off"\nmode = "strict"\n'),
        "$.identity.mode",
        id="identity",
    ),
    pytest.param(
        tenant_toml(tables='[[fields.contact]]\nkey = "plan"\ntype = "text"\nlength = 5\n'),
        "$.fields.contact[0].length",
        id="fields.contact",
    ),
    pytest.param(
        tenant_toml(tables='[[fields.person]]\nkey = "plan"\ntype = "text"\n'),
        "$.fields.person",
        id="fields",
    ),
    pytest.param(
        tenant_toml(tables='[compat]\nsmooch_app_id = "abc"\nintercom_app_id = "x"\n'),
        "$.compat.intercom_app_id",
        id="compat",
    ),
    pytest.param(
        tenant_toml(tables=GIST.format(vendor='timeout = "5s"')),
        "$.vendors[0].timeout",
        id="vendors",
    ),
    pytest.param(
        tenant_toml(
            tables='[profile]\nwebhook_url = "https://app.acme.test/p"\n'
            'template = "p.liquid"\nheadlin = "Billing"\n'
        ),
        "$.profile.headlin",
        id="profile",
    ),
]


@pytest.mark.parametrize(("text", "key_path"), TENANT_UNKNOWN)
def test_unknown_key_in_tenant_file_is_an_error(tmp_path: Path, text: str, key_path: str) -> None:
    path = make_tree(tmp_path, "", {"acme": text})
    (tmp_path / "tenants" / "p.liquid").write_text("{{ email }}")

    find_issue(issues_of(path), tenant_file(tmp_path), key_path)


SHIPPED_SETTINGS = {
    "smooch": (
        'base_url = "https://api.smooch.io"\napp_id = "5963c0d619a30a2e00de36b8"\n'
        'key_id = "app_5963c0d619a30a2e00de36b9"\nsecret = "s"\n'
    ),
    "sunshine": (
        'base_url = "https://acme.zendesk.com/sc"\napp_id = "5963c0d619a30a2e00de36b8"\n'
        'key_id = "app_5963c0d619a30a2e00de36b9"\nsecret = "s"\n'
    ),
    "gist": 'base_url = "https://api.getgist.com"\ntoken = "t"\n',
    "groove": 'base_url = "https://api.groovehq.com"\ntoken = "t"\n',
    "pipedrive": 'base_url = "https://acme.pipedrive.com"\ntoken = "t"\ncontact_type = "person"\n',
    "webhook": (
        'url = "https://hooks.acme.test/idgw"\nsecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\n'
    ),
}


def vendor_table(adapter: str, settings: str, extra: str = "") -> str:
    return f'[[vendors]]\nadapter = "{adapter}"\n{extra}\n[vendors.settings]\n{settings}'


def test_every_shipped_adapter_with_its_spec_settings_loads(tmp_path: Path) -> None:
    tables = "\n".join(vendor_table(a, s) for a, s in SHIPPED_SETTINGS.items())
    tables += "\n" + vendor_table(
        "gist", SHIPPED_SETTINGS["gist"], 'name = "gist-old"\nenabled = false'
    )

    acme = load(make_tree(tmp_path, "", {"acme": tenant_toml(tables=tables)})).tenants["acme"]

    assert [v.adapter for v in acme.vendors] == [*SHIPPED_SETTINGS, "gist"]
    assert [v.enabled for v in acme.vendors] == [True] * len(SHIPPED_SETTINGS) + [False]
    assert acme.vendors[4].settings["contact_type"] == "person"


@pytest.mark.parametrize("adapter", sorted(SHIPPED_SETTINGS))
def test_unknown_setting_of_a_shipped_adapter_is_an_error(tmp_path: Path, adapter: str) -> None:
    tables = vendor_table("gist", SHIPPED_SETTINGS["gist"]) + "\n"
    tables += vendor_table(adapter, SHIPPED_SETTINGS[adapter] + 'tokn = "typo"\n')
    path = make_tree(tmp_path, "", {"acme": tenant_toml(tables=tables)})

    find_issue(issues_of(path), tenant_file(tmp_path), "$.vendors[1].settings.tokn")


def test_missing_required_setting_of_a_shipped_adapter_is_an_error(tmp_path: Path) -> None:
    settings = 'base_url = "https://api.smooch.io"\nkey_id = "app_1"\nsecret = "s"\n'  # no app_id
    path = make_tree(tmp_path, "", {"acme": tenant_toml(tables=vendor_table("smooch", settings))})

    issues = [i for i in issues_of(path) if same_file(i, tenant_file(tmp_path))]

    assert any(
        i.path in ("$.vendors[0].settings", "$.vendors[0].settings.app_id") and "app_id" in str(i)
        for i in issues
    ), [str(i) for i in issues]


# --- api keys ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param(f'key = "{SECRET_B}"\nkey_sha256 = "{SHA_OF_OTHER}"', id="both"),
        pytest.param("", id="neither"),
    ],
)
def test_api_key_needs_exactly_one_of_key_and_key_sha256(tmp_path: Path, lines: str) -> None:
    text = f'id = "acme"\n[[api_keys]]\nname = "backend"\nkind = "secret"\n{lines}\n'
    path = make_tree(tmp_path, "", {"acme": text})

    issues = [i for i in issues_of(path) if same_file(i, tenant_file(tmp_path))]

    assert any(i.path.startswith("$.api_keys[0]") for i in issues), [str(i) for i in issues]


@pytest.mark.parametrize(
    "digest",
    [
        pytest.param(SHA_OF_OTHER[:-1], id="63-hex"),
        pytest.param(SHA_OF_OTHER + "0", id="65-hex"),
        pytest.param("z" * 64, id="not-hex"),
        pytest.param("", id="empty"),
    ],
)
def test_key_sha256_must_be_64_hex_digits(tmp_path: Path, digest: str) -> None:
    text = f'id = "acme"\n[[api_keys]]\nname = "h"\nkind = "secret"\nkey_sha256 = "{digest}"\n'
    path = make_tree(tmp_path, "", {"acme": text})

    find_issue(issues_of(path), tenant_file(tmp_path), "$.api_keys[0].key_sha256")


def test_key_sha256_alone_is_accepted(tmp_path: Path) -> None:
    text = (
        f'id = "acme"\n[[api_keys]]\nname = "h"\nkind = "secret"\nkey_sha256 = "{SHA_OF_OTHER}"\n'
    )

    acme = load(make_tree(tmp_path, "", {"acme": text})).tenants["acme"]

    assert acme.api_keys[0].key_sha256 == SHA_OF_OTHER
    assert acme.api_keys[0].key is None


def test_same_key_in_two_tenants_is_an_error(tmp_path: Path) -> None:
    tenants = {
        "acme": tenant_toml("acme", key=SECRET_A),
        "beta": tenant_toml("beta", key=SECRET_A),
    }
    path = make_tree(tmp_path, "", tenants)

    issues = issues_of(path)

    files = {tenant_file(tmp_path, "acme").resolve(), tenant_file(tmp_path, "beta").resolve()}
    assert any(
        Path(i.file).resolve() in files and i.path.startswith("$.api_keys[0]") for i in issues
    ), [str(i) for i in issues]


def test_same_key_given_as_key_and_as_key_sha256_in_two_tenants_is_an_error(
    tmp_path: Path,
) -> None:
    digest = hashlib.sha256(SECRET_A.encode()).hexdigest()
    beta = f'id = "beta"\n[[api_keys]]\nname = "h"\nkind = "secret"\nkey_sha256 = "{digest}"\n'
    path = make_tree(tmp_path, "", {"acme": tenant_toml("acme", key=SECRET_A), "beta": beta})

    issues = issues_of(path)

    files = {tenant_file(tmp_path, "acme").resolve(), tenant_file(tmp_path, "beta").resolve()}
    assert any(
        Path(i.file).resolve() in files and i.path.startswith("$.api_keys[0]") for i in issues
    ), [str(i) for i in issues]


def test_duplicate_tenant_ids_are_an_error(tmp_path: Path) -> None:
    tenants = {"one": tenant_toml("acme", key=SECRET_A), "two": tenant_toml("acme", key=SECRET_B)}
    path = make_tree(tmp_path, "", tenants)

    issues = issues_of(path)

    files = {tenant_file(tmp_path, "one").resolve(), tenant_file(tmp_path, "two").resolve()}
    matching = [i for i in issues if Path(i.file).resolve() in files and i.path == "$.id"]
    assert matching, [str(i) for i in issues]
    assert "acme" in matching[0].message


# --- fields -----------------------------------------------------------------------------------

BAD_KEYS = [
    "has space",
    "tab\there",
    "a.b",
    "$plan",
    "a~b",
    "back`tick",
    "excl!",
    "at@home",
    "hash#",
    "pct%",
    "caret^",
    "amp&",
    "star*",
    "quote'",
    'dquote"',
    "brace{",
    "brace}",
    "pipe|",
    "back\\slash",
    "bell\x07",
    "",
    "k" * 129,
]


def field_table(entity: str, key: str, type_: str = "text", extra: str = "") -> str:
    # a JSON string literal is a valid TOML basic string (same escapes)
    return f'[[fields.{entity}]]\nkey = {json.dumps(key)}\ntype = "{type_}"\n{extra}\n'


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: repr(k)[:20])
def test_invalid_field_key_is_an_error(tmp_path: Path, key: str) -> None:
    tables = field_table("contact", "plan") + field_table("contact", key)
    path = make_tree(tmp_path, "", {"acme": tenant_toml(tables=tables)})

    find_issue(issues_of(path), tenant_file(tmp_path), "$.fields.contact[1].key")


@pytest.mark.parametrize("key", ["Plan", "plan-2", "días", "a/b", "k" * 128])
def test_valid_unusual_field_keys_are_accepted(tmp_path: Path, key: str) -> None:
    tables = field_table("contact", key)

    acme = load(make_tree(tmp_path, "", {"acme": tenant_toml(tables=tables)})).tenants["acme"]

    assert [f.key for f in acme.fields.contact] == [key]


@pytest.mark.parametrize(
    ("entity", "key"),
    [
        ("contact", "email"),
        ("contact", "first_name"),
        ("contact", "name"),
        ("contact", "external_id"),
        ("contact", "phone"),
        ("contact", "tags"),
        ("contact", "secondary_emails"),
        ("contact", "signed_up_at"),
        ("contact", "twitter"),
        ("company", "domain"),
        ("company", "name"),
        ("company", "linkedin"),
    ],
)
def test_field_naming_a_standard_field_is_an_error(tmp_path: Path, entity: str, key: str) -> None:
    path = make_tree(tmp_path, "", {"acme": tenant_toml(tables=field_table(entity, key))})

    find_issue(issues_of(path), tenant_file(tmp_path), f"$.fields.{entity}[0].key")


@pytest.mark.parametrize("extra", ["", "options = []"], ids=["no-options", "empty-options"])
def test_dropdown_without_options_is_an_error(tmp_path: Path, extra: str) -> None:
    path = make_tree(
        tmp_path,
        "",
        {"acme": tenant_toml(tables=field_table("contact", "plan", "dropdown", extra))},
    )

    issues = [i for i in issues_of(path) if same_file(i, tenant_file(tmp_path))]

    assert any(i.path.startswith("$.fields.contact[0]") for i in issues), [str(i) for i in issues]


@pytest.mark.parametrize(
    "type_", ["number", "boolean", "date", "datetime", "tags", "address", "link", "long_text"]
)
def test_unique_on_a_non_text_email_phone_field_is_an_error(tmp_path: Path, type_: str) -> None:
    tables = field_table("contact", "thing", type_, "unique = true")
    path = make_tree(tmp_path, "", {"acme": tenant_toml(tables=tables)})

    issues = [i for i in issues_of(path) if same_file(i, tenant_file(tmp_path))]

    assert any(i.path.startswith("$.fields.contact[0]") for i in issues), [str(i) for i in issues]


def test_unique_on_text_email_and_phone_fields_is_accepted(tmp_path: Path) -> None:
    tables = "".join(
        field_table("contact", f"u_{t}", t, "unique = true") for t in ("text", "email", "phone")
    ) + field_table("company", "vat", "text", "unique = true")

    acme = load(make_tree(tmp_path, "", {"acme": tenant_toml(tables=tables)})).tenants["acme"]

    assert [f.unique for f in acme.fields.contact] == [True, True, True]
    assert acme.fields.company[0].unique is True


# --- identity ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lines",
    [
        'verification = "required"',
        'verification = "optional"',
        'verification = "required"\nsecret = ""',
    ],
    ids=["required", "optional", "empty-secret"],
)
def test_identity_verification_without_secret_is_an_error(tmp_path: Path, lines: str) -> None:
    path = make_tree(tmp_path, "", {"acme": tenant_toml(tables=f"[identity]\n{lines}\n")})

    issues = [i for i in issues_of(path) if same_file(i, tenant_file(tmp_path))]

    assert any(i.path.startswith("$.identity") for i in issues), [str(i) for i in issues]


def test_identity_verification_with_secret_or_off_is_accepted(tmp_path: Path) -> None:
    tenants = {
        "acme": tenant_toml(tables='[identity]\nverification = "required"\nsecret = "s3cret"\n'),
        "beta": tenant_toml("beta", key=SECRET_B, tables='[identity]\nverification = "off"\n'),
    }

    settings = load(make_tree(tmp_path, "", tenants))

    assert settings.tenants["acme"].identity.secret == "s3cret"
    assert settings.tenants["beta"].identity.verification == "off"


# --- several errors at once, missing and broken files -----------------------------------------


def test_errors_from_several_tenant_files_are_all_reported_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IDGW_UNIT_ABSENT", raising=False)
    keys = [f"sk_test_unit_{n}_0123456789abcdef" for n in range(6)]
    tenants = {
        "a": tenant_toml("a", key=keys[0], tables='[identity]\nverification = "off"\nmode = 1\n'),
        "b": tenant_toml("b", key=keys[1], top='session_ttl = "forever"'),
        "c": tenant_toml("c", key="${IDGW_UNIT_ABSENT}"),
        "d": 'id = "d"\n[[api_keys]\nname = "broken"\n',
        "e": tenant_toml("e", key=keys[4], tables=field_table("contact", "a.b")),
        "f": tenant_toml("f", key=keys[5]),
    }
    path = make_tree(tmp_path, "", tenants)

    issues = issues_of(path)

    find_issue(issues, tenant_file(tmp_path, "a"), "$.identity.mode")
    find_issue(issues, tenant_file(tmp_path, "b"), "$.session_ttl")
    find_issue(issues, tenant_file(tmp_path, "c"), "$.api_keys[0].key")
    find_issue(issues, tenant_file(tmp_path, "d"), "$")
    find_issue(issues, tenant_file(tmp_path, "e"), "$.fields.contact[0].key")
    assert not [i for i in issues if same_file(i, tenant_file(tmp_path, "f"))]


def test_two_independent_errors_in_one_file_are_both_reported(tmp_path: Path) -> None:
    # SPEC §9: `config check` shows "every error with file and key path".
    path = make_tree(tmp_path, '[server]\nprot = 8080\n[delivery]\ntimeout = "soon"\n')

    issues = issues_of(path)

    find_issue(issues, path, "$.server.prot")
    find_issue(issues, path, "$.delivery.timeout")


def test_missing_tenants_dir_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[tenants]\ndir = "no-such-folder"\n')

    issue = find_issue(issues_of(path), path, "$.tenants.dir")

    assert "no-such-folder" in issue.message


def test_missing_gateway_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    issues = issues_of(path)

    assert any(same_file(i, path) for i in issues), [str(i) for i in issues]


def test_invalid_toml_in_gateway_file_is_an_error(tmp_path: Path) -> None:
    path = make_tree(tmp_path, "[server\nport = 8080\n")

    find_issue(issues_of(path), path, "$")


def test_invalid_toml_in_tenant_file_is_an_error(tmp_path: Path) -> None:
    path = make_tree(tmp_path, "", {"acme": 'id = "acme\n'})

    find_issue(issues_of(path), tenant_file(tmp_path), "$")


def test_issue_text_names_file_and_path(tmp_path: Path) -> None:
    path = make_tree(tmp_path, "[server]\nport = 99999\n")

    with pytest.raises(ConfigError) as info:
        load_settings(path)

    text = str(info.value)
    assert str(path.resolve()) in text
    assert "$.server.port" in text


@pytest.mark.parametrize(
    ("adapter", "settings", "key"),
    [
        pytest.param(
            "pipedrive",
            SHIPPED_SETTINGS["pipedrive"].replace('"person"', '"Lead"'),
            "contact_type",
            id="pipedrive-type",
        ),
        pytest.param(
            "smooch",
            SHIPPED_SETTINGS["smooch"].replace('"app_5963c0d619a30a2e00de36b9"', '"plain"'),
            "key_id",
            id="smooch-key-id",
        ),
        pytest.param(
            "webhook",
            'url = "https://hooks.acme.test/x"\nsecret = "plain"\n',
            "secret",
            id="webhook-secret",
        ),
        pytest.param(
            "gist", 'base_url = "ftp://api.getgist.com"\ntoken = "t"\n', "base_url", id="url-scheme"
        ),
        pytest.param(
            "gist", 'base_url = "https://api.getgist.com"\ntoken = 5\n', "token", id="type"
        ),
    ],
)
def test_adapter_settings_are_checked_against_the_manifest(
    tmp_path: Path, adapter: str, settings: str, key: str
) -> None:
    path = make_tree(tmp_path, "", {"acme": tenant_toml(tables=vendor_table(adapter, settings))})

    issue = find_issue(issues_of(path), tenant_file(tmp_path), f"$.vendors[0].settings.{key}")

    assert "plain" not in str(issue)  # a secret's value never appears in an error


def test_unknown_adapter_is_an_error(tmp_path: Path) -> None:
    path = make_tree(
        tmp_path, "", {"acme": tenant_toml(tables=vendor_table("intercom", 'token = "t"\n'))}
    )

    find_issue(issues_of(path), tenant_file(tmp_path), "$.vendors[0].adapter")


def test_two_vendors_with_one_name_is_an_error(tmp_path: Path) -> None:
    tables = vendor_table("gist", SHIPPED_SETTINGS["gist"]) + vendor_table(
        "gist", SHIPPED_SETTINGS["gist"]
    )
    path = make_tree(tmp_path, "", {"acme": tenant_toml(tables=tables)})

    find_issue(issues_of(path), tenant_file(tmp_path), "$.vendors[1]")


def test_a_short_or_shared_groove_token_is_an_error(tmp_path: Path) -> None:
    """The token alone names the tenant on the Groove profile source: long and unique."""
    short = tenant_toml(tables='[compat]\ngroove_api_token = "x"\n')
    path = make_tree(tmp_path, "", {"acme": short})
    find_issue(issues_of(path), tenant_file(tmp_path), "$.compat.groove_api_token")

    shared = '[compat]\ngroove_api_token = "groove-token-shared-0123456789"\n'
    other = tmp_path / "two"
    path = make_tree(
        other,
        "",
        {
            "acme": tenant_toml(tables=shared),
            "beta": tenant_toml("beta", key=SECRET_B, tables=shared),
        },
    )
    issues = issues_of(path)
    assert any(i.path == "$.compat.groove_api_token" and "same as" in i.message for i in issues), (
        issues
    )


@pytest.mark.parametrize(
    ("section", "line"),
    [
        ("delivery", 'timeout = "0s"'),
        ("profile", 'timeout = "0s"'),
        ("tenant", 'session_ttl = "0s"'),
    ],
)
def test_zero_durations_are_errors(tmp_path: Path, section: str, line: str) -> None:
    if section == "delivery":
        path = make_tree(tmp_path, f"[delivery]\n{line}\n", {"acme": tenant_toml()})
        assert any(i.path.startswith("$.delivery") for i in issues_of(path))
        return
    if section == "profile":
        tables = (
            f'[profile]\nwebhook_url = "https://app.acme.test/p"\ntemplate = "p.liquid"\n{line}\n'
        )
        path = make_tree(tmp_path, "", {"acme": tenant_toml(tables=tables)})
        (tmp_path / "tenants" / "p.liquid").write_text("{{ email }}")
        assert any(i.path.startswith("$.profile") for i in issues_of(path))
        return
    path = make_tree(tmp_path, "", {"acme": tenant_toml(top=line)})
    assert any("session_ttl" in str(i) for i in issues_of(path))
