"""The Smooch dialect (SPEC §5.5) driven by Smooch's own SDKs — PyPI ``smooch`` and npm
``smooch-core`` — unchanged but for the base URL and credentials: they authenticate with a key
id and secret (Basic, or a JWT they sign), update, get by ``userId`` and by ``_id``, delete,
and read a 4xx error's code and description."""

from __future__ import annotations

import json
import warnings
from typing import TYPE_CHECKING, Any

import jwt
import pytest
import smooch
from smooch.rest import ApiException

from tests.conftest import ACME_SECRET, SMOOCH_APP_ID, RunningGateway, uniq, uniq_email

if TYPE_CHECKING:
    from collections.abc import Iterator

    import httpx

    from tests.integration.client_libraries import NodeLibraries

KEY_ID = "backend"  # the name of acme's secret key (tests/conftest.py)


def app_jwt(secret: str, kid: str = KEY_ID, scope: str = "app") -> str:
    """A JWT as Smooch's docs tell apps to sign one (PyJWT, HS256, kid = the key id)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PyJWT warns that test keys are under 32 bytes
        return jwt.encode({"scope": scope}, secret, algorithm="HS256", headers={"kid": kid})


@pytest.fixture
def smooch_api(gateway: RunningGateway) -> Iterator[smooch.AppUserApi]:
    """The Python SDK's AppUserApi on the gateway, credentials set per test on the SDK's one
    (global) configuration, and cleared after."""
    config = smooch.configuration
    client = smooch.ApiClient(host=f"{gateway.url}/compat/smooch")
    yield smooch.AppUserApi(client)
    config.username, config.password = "", ""
    config.api_key.pop("Authorization", None)
    config.api_key_prefix.pop("Authorization", None)


def use_basic(key_id: str, secret: str) -> None:
    smooch.configuration.username = key_id
    smooch.configuration.password = secret


def use_jwt(token: str) -> None:
    smooch.configuration.api_key["Authorization"] = token
    smooch.configuration.api_key_prefix["Authorization"] = "Bearer"


def error_of(exc: ApiException) -> dict[str, Any]:
    """What an SDK user reads of a failed call: Smooch's `{"error": {"code", "description"}}`."""
    body = json.loads(exc.body)
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert isinstance(error["code"], str) and isinstance(error["description"], str)
    assert error["description"]
    return error


@pytest.mark.parametrize("credentials", ["basic", "jwt"])
def test_python_sdk_updates_gets_by_user_id_and_id_and_deletes(
    smooch_api: smooch.AppUserApi, api: httpx.Client, credentials: str
) -> None:
    if credentials == "basic":
        use_basic(KEY_ID, ACME_SECRET)
    else:
        use_jwt(app_jwt(ACME_SECRET))
    user, email = uniq("sm-"), uniq_email()
    update = smooch.AppUserUpdate(
        given_name="Steve",
        email=email,
        signed_up_at="2015-01-01T00:00:00Z",
        properties={"premiumUser": True, "itemsInCart": 3},
    )
    created = smooch_api.update_app_user(SMOOCH_APP_ID, user, update).app_user
    assert created.user_id == user and created.id.startswith("c_")
    assert (created.given_name, created.email) == ("Steve", email)
    assert created.properties == {"premiumUser": True, "itemsInCart": 3}

    by_user_id = smooch_api.get_app_user(SMOOCH_APP_ID, user).app_user
    by_id = smooch_api.get_app_user(SMOOCH_APP_ID, created.id).app_user
    assert by_user_id.to_dict() == by_id.to_dict()
    assert by_id.user_id == user and by_id.signed_up_at == "2015-01-01T00:00:00Z"

    # an update by _id changes that contact, and creates none
    renamed = smooch_api.update_app_user(
        SMOOCH_APP_ID, created.id, smooch.AppUserUpdate(surname="Brule")
    ).app_user
    assert (renamed.id, renamed.user_id, renamed.surname) == (created.id, user, "Brule")
    assert api.get("/v1/contacts", params={"user_id": user}).json()["last_name"] == "Brule"
    assert api.get("/v1/contacts", params={"user_id": created.id}).status_code == 404

    assert smooch_api.delete_app_user(SMOOCH_APP_ID, user) is None
    assert api.get(f"/v1/contacts/{created.id}").status_code == 404
    with pytest.raises(ApiException) as gone:
        smooch_api.get_app_user(SMOOCH_APP_ID, created.id)
    assert gone.value.status == 404
    assert error_of(gone.value)["code"] == "not_found"


def test_python_sdk_reads_a_4xx_errors_code_and_description(
    smooch_api: smooch.AppUserApi,
) -> None:
    use_basic(KEY_ID, ACME_SECRET)
    user = uniq("sm-")
    with pytest.raises(ApiException) as invalid:
        smooch_api.update_app_user(SMOOCH_APP_ID, user, smooch.AppUserUpdate(email="not-mail"))
    assert invalid.value.status == 422
    error = error_of(invalid.value)
    assert error["code"] == "validation_failed"
    assert [(e["path"], e["code"]) for e in error["errors"]] == [("$.email", "email")]

    taken = uniq_email()
    smooch_api.update_app_user(SMOOCH_APP_ID, uniq("sm-"), smooch.AppUserUpdate(email=taken))
    with pytest.raises(ApiException) as conflict:
        smooch_api.update_app_user(SMOOCH_APP_ID, user, smooch.AppUserUpdate(email=taken))
    assert conflict.value.status == 409
    assert error_of(conflict.value)["code"] == "external_id_mismatch"

    with pytest.raises(ApiException) as wrong_app:
        smooch_api.get_app_user("000000000000000000000000", user)
    assert wrong_app.value.status == 404
    assert error_of(wrong_app.value)["code"] == "not_found"


@pytest.mark.parametrize(
    "credentials",
    [
        ("basic", KEY_ID, ACME_SECRET[:-1] + "X"),  # wrong secret
        ("basic", "browser", ACME_SECRET),  # the key id of another key
        ("jwt", KEY_ID, "a-secret-that-is-no-key"),  # signed with something else
        ("jwt", "nobody", ACME_SECRET),  # a kid naming no key
    ],
    ids=["wrong-secret", "other-key-id", "jwt-wrong-key", "jwt-unknown-kid"],
)
def test_python_sdk_with_wrong_credentials_gets_401(
    smooch_api: smooch.AppUserApi, credentials: tuple[str, str, str]
) -> None:
    kind, key_id, secret = credentials
    if kind == "basic":
        use_basic(key_id, secret)
    else:
        use_jwt(app_jwt(secret, kid=key_id))
    with pytest.raises(ApiException) as refused:
        smooch_api.get_app_user(SMOOCH_APP_ID, uniq("sm-"))
    assert refused.value.status == 401
    assert error_of(refused.value)["code"] == "unauthorized"


def test_smooch_core_signs_its_jwt_and_does_everything(
    node: NodeLibraries, gateway: RunningGateway, api: httpx.Client
) -> None:
    user, email = uniq("sm-"), uniq_email()
    config = {"serviceUrl": f"{gateway.url}/compat/smooch", "keyId": KEY_ID, "secret": ACME_SECRET}
    first = node.run(
        "smooch_core.js",
        {
            **config,
            "steps": [
                ["update", [user, {"givenName": "Wilma", "email": email}]],
                ["get", [user]],
            ],
        },
    )
    created = first[0]["ok"]["appUser"]
    assert created["userId"] == user and created["givenName"] == "Wilma"
    assert first[1]["ok"]["appUser"] == created
    smooch_id = created["_id"]

    second = node.run(
        "smooch_core.js",
        {
            **config,
            "steps": [
                ["get", [smooch_id]],
                ["update", [smooch_id, {"surname": "Flintstone"}]],
                ["update", [user, {"email": "not-mail"}]],
                ["delete", [smooch_id]],
                ["get", [user]],
            ],
        },
    )
    got, renamed, invalid, deleted, gone = second
    assert got["ok"]["appUser"]["userId"] == user
    assert renamed["ok"]["appUser"]["surname"] == "Flintstone"
    assert renamed["ok"]["appUser"]["_id"] == smooch_id
    assert invalid["error"]["status"] == 422
    assert invalid["error"]["code"] == "validation_failed"
    assert invalid["error"]["description"]
    assert "ok" in deleted
    assert gone["error"] == {
        "status": 404,
        "code": "not_found",
        "description": gone["error"]["description"],
    }
    assert gone["error"]["description"]
    assert api.get(f"/v1/contacts/{smooch_id}").status_code == 404


def test_smooch_core_with_a_wrong_secret_reads_401(
    node: NodeLibraries, gateway: RunningGateway
) -> None:
    (refused,) = node.run(
        "smooch_core.js",
        {
            "serviceUrl": f"{gateway.url}/compat/smooch",
            "keyId": KEY_ID,
            "secret": "not-the-secret-of-backend",
            "steps": [["get", [uniq("sm-")]]],
        },
    )
    assert refused["error"]["status"] == 401
    assert refused["error"]["code"] == "unauthorized"
    assert refused["error"]["description"]
