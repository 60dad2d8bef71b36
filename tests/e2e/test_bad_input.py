"""Bad input on the wire: malformed JSON, wrong types, unknown or missing X-Amz-Target,
oversized bodies, missing required members, unimplemented operations. Every one must
get a JSON error with a __type and a 4xx status, never a 5xx or a dropped connection,
and the server must keep answering."""

import json

import pytest
import requests

from helpers import VALIDATION_CODES


def assert_json_error(resp, status=400):
    if status is None:
        assert 400 <= resp.status < 500, (resp.status, resp.body)
    else:
        assert resp.status == status, (resp.status, resp.body)
    body = resp.json
    assert body.get("__type"), body
    return resp.error_type


def assert_still_serving(raw):
    resp = raw.call("ListSecrets", {})
    assert resp.status == 200, resp.body


@pytest.mark.parametrize("body", [b"{", b"not json", b'{"SecretId": "x",}', b"[1,2]", b'"a string"'])
def test_malformed_json(raw, body):
    resp = raw.call("DescribeSecret", body)
    # AWS's JSON front end answers a body it cannot deserialize with SerializationException
    # (not in the Secrets Manager docs).
    assert assert_json_error(resp) == "SerializationException"
    assert_still_serving(raw)


@pytest.mark.parametrize("body", [
    {"SecretId": 5},
    {"SecretId": ["a"]},
    {"SecretId": {"a": 1}},
    {"SecretId": None, "VersionStage": 7},
])
def test_wrong_member_types(raw, body):
    resp = raw.call("GetSecretValue", body)
    # Recorded AWS behaviour for a number where a string is expected: SerializationException.
    assert assert_json_error(resp) in ("SerializationException",) + VALIDATION_CODES
    assert_still_serving(raw)


def test_wrong_type_boolean_and_integer(raw, sm):
    sm.create_secret(Name="x", SecretString="v")
    resp = raw.call("DeleteSecret", {"SecretId": "x", "RecoveryWindowInDays": "seven"})
    assert assert_json_error(resp) in ("SerializationException",) + VALIDATION_CODES
    resp = raw.call("ListSecretVersionIds", {"SecretId": "x", "IncludeDeprecated": "yes"})
    assert assert_json_error(resp) in ("SerializationException",) + VALIDATION_CODES
    assert sm.get_secret_value(SecretId="x")["SecretString"] == "v"


def test_unknown_target(raw):
    resp = raw.call("secretsmanager.FrobnicateSecret", {})
    assert assert_json_error(resp) == "UnknownOperationException"
    resp = raw.call("otherservice.ListSecrets", {})
    assert assert_json_error(resp) == "UnknownOperationException"
    assert_still_serving(raw)


def test_missing_target(raw):
    resp = raw.call(None, {})
    assert_json_error(resp, status=None)
    assert_still_serving(raw)


@pytest.mark.parametrize("op,body", [
    ("GetSecretValue", {}),
    ("DescribeSecret", {}),
    ("CreateSecret", {"SecretString": "x", "ClientRequestToken": "0" * 32}),
    ("DeleteSecret", {}),
    ("TagResource", {"SecretId": "x"}),
    ("UntagResource", {"SecretId": "x"}),
    ("UpdateSecretVersionStage", {"SecretId": "x"}),
])
def test_missing_required_members(raw, op, body):
    resp = raw.call(op, body)
    # The model marks these members required; which code AWS returns is not documented.
    assert assert_json_error(resp) in VALIDATION_CODES
    assert_still_serving(raw)


def test_empty_body_for_operation_without_required_members(raw):
    # An empty body on an operation whose members are all optional: AWS treats it as {}.
    resp = raw.call("GetRandomPassword", b"")
    assert resp.status in (200, 400), resp.body
    if resp.status == 200:
        assert len(resp.json["RandomPassword"]) == 32
    else:
        assert resp.json.get("__type")


def test_oversized_body(raw):
    big = json.dumps({"Name": "huge", "SecretString": "a" * (8 * 1024 * 1024),
                      "ClientRequestToken": "0" * 32}).encode()
    try:
        resp = raw.call("CreateSecret", big)
    except requests.ConnectionError:
        pytest.fail("server dropped the connection instead of answering an oversized body")
    # 413 or 400, with a JSON __type.
    assert_json_error(resp, status=None)
    assert_still_serving(raw)


def test_get_request_is_rejected(server, raw):
    r = requests.get(server.endpoint + "/", timeout=10)
    assert 400 <= r.status_code < 500, r.status_code
    assert_still_serving(raw)


UNIMPLEMENTED = [
    ("AssociateCrossAccountReplica", {"SecretId": "x"}),
    ("DisassociateCrossAccountReplica", {"SecretId": "x"}),
]


@pytest.mark.parametrize("op,body", UNIMPLEMENTED, ids=[u[0] for u in UNIMPLEMENTED])
def test_unimplemented_operations_fail_clearly(raw, sm, op, body):
    sm.create_secret(Name="x", SecretString="v")
    resp = raw.call(op, body)
    assert 400 <= resp.status < 600, (resp.status, resp.body)
    assert resp.json.get("__type"), resp.body
    assert op in resp.message, resp.body
    assert sm.get_secret_value(SecretId="x")["SecretString"] == "v"


def test_dev_endpoints_need_no_auth_but_only_post(server):
    r = requests.get(server.endpoint + "/_arca/dev/reset", timeout=10)
    assert r.status_code >= 400
