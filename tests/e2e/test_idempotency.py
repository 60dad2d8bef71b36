"""ClientRequestToken idempotency (CreateSecret, PutSecretValue, UpdateSecret), and what
happens to a raw request that carries no token (SDKs always fill one in)."""

import uuid

from helpers import error_message, VALIDATION_CODES, expect_error, token


def version_ids(sm, secret_id):
    return {v["VersionId"] for v in sm.list_secret_version_ids(SecretId=secret_id, IncludeDeprecated=True)["Versions"]}


def test_put_same_token_same_value_is_a_no_op(sm):
    sm.create_secret(Name="i", SecretString="v1")
    tok = token()
    first = sm.put_secret_value(SecretId="i", SecretString="v2", ClientRequestToken=tok)
    before = sm.describe_secret(SecretId="i")["VersionIdsToStages"]
    again = sm.put_secret_value(SecretId="i", SecretString="v2", ClientRequestToken=tok)
    assert again["VersionId"] == first["VersionId"] == tok
    assert sm.describe_secret(SecretId="i")["VersionIdsToStages"] == before
    assert len(version_ids(sm, "i")) == 2


def test_put_same_token_same_binary_is_a_no_op(sm):
    sm.create_secret(Name="ib", SecretBinary=b"\x00\x01")
    tok = token()
    sm.put_secret_value(SecretId="ib", SecretBinary=b"\x02\x03", ClientRequestToken=tok)
    sm.put_secret_value(SecretId="ib", SecretBinary=b"\x02\x03", ClientRequestToken=tok)
    assert len(version_ids(sm, "ib")) == 2


def test_put_same_token_different_value_fails(sm):
    sm.create_secret(Name="j", SecretString="v1")
    tok = token()
    sm.put_secret_value(SecretId="j", SecretString="v2", ClientRequestToken=tok)
    # Documented: "the request fails because you can't modify an existing version".
    # The operation's error list names ResourceExistsException for that case.
    expect_error("ResourceExistsException", sm.put_secret_value, SecretId="j", SecretString="other",
                 ClientRequestToken=tok)
    # Changing the value's type (string -> binary) is also a different value.
    expect_error("ResourceExistsException", sm.put_secret_value, SecretId="j", SecretBinary=b"v2",
                 ClientRequestToken=tok)
    assert sm.get_secret_value(SecretId="j", VersionId=tok)["SecretString"] == "v2"
    assert len(version_ids(sm, "j")) == 2


def test_put_reusing_the_initial_versions_token(sm):
    tok = token()
    sm.create_secret(Name="k", SecretString="v1", ClientRequestToken=tok)
    sm.put_secret_value(SecretId="k", SecretString="v1", ClientRequestToken=tok)
    assert version_ids(sm, "k") == {tok}
    expect_error("ResourceExistsException", sm.put_secret_value, SecretId="k", SecretString="v2",
                 ClientRequestToken=tok)


def test_create_retry_with_same_token_and_value_succeeds(sm):
    # Documented for CreateSecret's ClientRequestToken: a version with this token and the
    # same value already exists -> "the request is ignored".
    tok = token()
    first = sm.create_secret(Name="cr", SecretString="v", ClientRequestToken=tok)
    again = sm.create_secret(Name="cr", SecretString="v", ClientRequestToken=tok)
    assert again["ARN"] == first["ARN"]
    assert again["VersionId"] == tok
    assert version_ids(sm, "cr") == {tok}


def test_create_existing_name_with_new_token_fails(sm):
    sm.create_secret(Name="cr2", SecretString="v", ClientRequestToken=token())
    expect_error("ResourceExistsException", sm.create_secret, Name="cr2", SecretString="v",
                 ClientRequestToken=token())


def test_update_with_existing_token(sm):
    tok = token()
    arn = sm.create_secret(Name="u", SecretString="v1", ClientRequestToken=tok)["ARN"]
    # The documentation says a token that matches an existing version "results in an
    # error"; AWS itself refuses it only with another value (moto's AWS-verified
    # test_update_different_secret_value_with_same_token, with this text), and answers a
    # retry with the same value as a no-op (test_update_same_secret_value_with_same_token).
    e = expect_error("ResourceExistsException", sm.update_secret, SecretId="u", SecretString="v2",
                     ClientRequestToken=tok)
    assert error_message(e) == (f"You can't use ClientRequestToken {tok} because that value is "
                                f"already in use for a version of secret {arn}.")
    again = sm.update_secret(SecretId="u", SecretString="v1", ClientRequestToken=tok)
    assert again["VersionId"] == tok
    assert version_ids(sm, "u") == {tok}


def test_same_token_on_two_secrets_is_independent(sm):
    # Tokens identify versions within one secret ("uniqueness within the specified secret").
    tok = token()
    sm.create_secret(Name="a", SecretString="1", ClientRequestToken=tok)
    sm.create_secret(Name="b", SecretString="2", ClientRequestToken=tok)
    assert sm.get_secret_value(SecretId="a")["SecretString"] == "1"
    assert sm.get_secret_value(SecretId="b")["SecretString"] == "2"


def test_token_length_bounds(sm, sm_raw):
    sm.create_secret(Name="t", SecretString="0")
    sm.put_secret_value(SecretId="t", SecretString="1", ClientRequestToken="a" * 32)
    sm.put_secret_value(SecretId="t", SecretString="2", ClientRequestToken="b" * 64)
    expect_error(VALIDATION_CODES, sm_raw.put_secret_value, SecretId="t", SecretString="3",
                 ClientRequestToken="c" * 31)
    expect_error(VALIDATION_CODES, sm_raw.put_secret_value, SecretId="t", SecretString="3",
                 ClientRequestToken="d" * 65)


# --- Raw requests without a token --------------------------------------------------
# AWS's docs: "If you generate a raw HTTP request to the Secrets Manager service endpoint,
# then you must generate a ClientRequestToken and include it in the request."
# Recorded AWS behaviour (not in the API reference): HTTP 400, InvalidRequestException,
# "You must provide a ClientRequestToken value. We recommend a UUID-type value."

def _assert_token_required(resp):
    assert resp.status == 400, resp.body
    assert resp.error_type == "InvalidRequestException", resp.body
    assert "ClientRequestToken" in resp.message


def test_raw_put_without_token_is_rejected(sm, raw):
    sm.create_secret(Name="raw", SecretString="v1")
    resp = raw.call("PutSecretValue", {"SecretId": "raw", "SecretString": "v2"})
    _assert_token_required(resp)
    assert sm.get_secret_value(SecretId="raw")["SecretString"] == "v1"


def test_raw_create_with_value_without_token_is_rejected(sm, raw):
    resp = raw.call("CreateSecret", {"Name": "rawc", "SecretString": "v"})
    _assert_token_required(resp)


def test_raw_update_value_without_token_is_rejected(sm, raw):
    sm.create_secret(Name="rawu", SecretString="v1")
    resp = raw.call("UpdateSecret", {"SecretId": "rawu", "SecretString": "v2"})
    _assert_token_required(resp)
    assert sm.get_secret_value(SecretId="rawu")["SecretString"] == "v1"


def test_raw_requests_with_token_work(sm, raw):
    tok = str(uuid.uuid4())
    resp = raw.call("CreateSecret", {"Name": "rawok", "SecretString": "v", "ClientRequestToken": tok})
    assert resp.status == 200, resp.body
    assert resp.json["VersionId"] == tok
    assert {k.lower(): v for k, v in resp.headers.items()}.get("content-type", "").startswith("application/x-amz-json-1.1")
    assert sm.get_secret_value(SecretId="rawok")["SecretString"] == "v"
