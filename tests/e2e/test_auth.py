"""SigV4 authentication through raw requests signed by botocore's own signer:
missing, unknown key, wrong secret, clock skew, wrong scope, presigned query."""

import datetime as dt

from helpers import ACCESS_KEY, REGION, SECRET_KEY, expect_error

LIST = ("ListSecrets", {})


def assert_auth_error(resp, code):
    # AWS's JSON front end answers authentication failures with HTTP 400 and these
    # __type names (status for MissingAuthenticationToken: 400 per Arca's error table;
    # AWS's common-errors page lists 403 for the query protocol).
    assert resp.status == 400, (resp.status, resp.body)
    assert resp.error_type == code, resp.body
    assert resp.message


def test_signed_request_accepted(raw):
    resp = raw.call(*LIST)
    assert resp.status == 200, resp.body
    assert resp.json["SecretList"] == []


def test_unsigned_request(raw):
    assert_auth_error(raw.call(*LIST, sign=False), "MissingAuthenticationTokenException")


def test_unknown_access_key(raw, make_client):
    assert_auth_error(raw.call(*LIST, access_key="AKIAUNKNOWNKEY000000"), "UnrecognizedClientException")
    other = make_client(access_key="AKIAUNKNOWNKEY000000")
    expect_error("UnrecognizedClientException", other.list_secrets)


def test_wrong_secret_key(raw, make_client):
    assert_auth_error(raw.call(*LIST, secret_key=SECRET_KEY + "x"), "InvalidSignatureException")
    other = make_client(secret_key="wrong-secret")
    expect_error("InvalidSignatureException", other.list_secrets)


def test_signature_expired(raw):
    # AWS allows 5 minutes of clock skew; 10 minutes off is "Signature expired" /
    # "Signature not yet current". The check is against the wall clock (the dev clock
    # that /_arca/dev/advance-clock moves must not affect it).
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    past = raw.call(*LIST, when=now - dt.timedelta(minutes=10))
    assert_auth_error(past, "InvalidSignatureException")
    assert "expired" in past.message.lower()
    future = raw.call(*LIST, when=now + dt.timedelta(minutes=10))
    assert_auth_error(future, "InvalidSignatureException")
    # Within the window is fine.
    assert raw.call(*LIST, when=now - dt.timedelta(minutes=2)).status == 200


def test_wrong_service_in_scope(raw):
    assert_auth_error(raw.call(*LIST, service="s3"), "InvalidSignatureException")


def test_tampered_body(raw):
    prepared = raw.build("ListSecrets", {"MaxResults": 5})
    prepared.body = b'{"MaxResults": 6}'
    prepared.headers["Content-Length"] = str(len(prepared.body))
    assert_auth_error(raw.send(prepared), "InvalidSignatureException")


def test_tampered_target_header(raw, sm):
    sm.create_secret(Name="x", SecretString="v")
    prepared = raw.build("DescribeSecret", {"SecretId": "x"})
    prepared.headers["X-Amz-Target"] = "secretsmanager.GetSecretValue"
    assert_auth_error(raw.send(prepared), "InvalidSignatureException")


def test_malformed_authorization_header(raw):
    prepared = raw.build("ListSecrets", {}, sign=False)
    prepared.headers["Authorization"] = "AWS4-HMAC-SHA256 garbage"
    resp = raw.send(prepared)
    assert resp.status == 400, resp.body
    # AWS calls a header it cannot parse IncompleteSignatureException/IncompleteSignature.
    assert resp.error_type in ("IncompleteSignatureException", "IncompleteSignature",
                               "InvalidSignatureException", "MissingAuthenticationTokenException"), resp.body


def test_presigned_query_request_accepted(raw, sm):
    sm.create_secret(Name="pre", SecretString="signed-in-the-url")
    resp = raw.call("GetSecretValue", {"SecretId": "pre"}, presign=True)
    assert resp.status == 200, resp.body
    assert resp.json["SecretString"] == "signed-in-the-url"


def test_presigned_query_with_wrong_secret(raw):
    resp = raw.call(*LIST, presign=True, secret_key="nope")
    assert_auth_error(resp, "InvalidSignatureException")


def test_any_region_in_scope(raw):
    for region in ("eu-west-1", "ap-southeast-2", REGION):
        assert raw.call(*LIST, region=region).status == 200


def test_access_key_is_exact(raw):
    assert_auth_error(raw.call(*LIST, access_key=ACCESS_KEY.lower()), "UnrecognizedClientException")
