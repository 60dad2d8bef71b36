"""CreateSecret, GetSecretValue, DescribeSecret, UpdateSecret: ARNs, SecretId forms,
string and binary values, the 65,536-byte limit, value-less secrets, dates."""

import datetime as dt

from helpers import (
    ACCOUNT_ID, REGION, VALIDATION_CODES, create_after_purge, expect_error, midnight_utc,
    parse_arn, secret_gone, token, wait_until,
)

MAX_VALUE = 65536


def test_create_returns_arn_name_and_version(sm):
    tok = token()
    out = sm.create_secret(Name="app/db", SecretString="s3cr3t", ClientRequestToken=tok)
    arn = parse_arn(out["ARN"])
    assert arn == {"region": REGION, "account": ACCOUNT_ID, "name": "app/db", "suffix": arn["suffix"]}
    assert out["Name"] == "app/db"
    assert out["VersionId"] == tok  # the token becomes the VersionId (documented)


def test_get_by_name_full_arn_and_partial_arn(sm):
    out = sm.create_secret(Name="prod/api-key", SecretString="v1")
    full = out["ARN"]
    partial = full[: -len("-XXXXXX")]
    for secret_id in ("prod/api-key", full, partial):
        got = sm.get_secret_value(SecretId=secret_id)
        assert got["SecretString"] == "v1"
        assert got["ARN"] == full
        assert got["Name"] == "prod/api-key"
        assert got["VersionId"] == out["VersionId"]
        assert got["VersionStages"] == ["AWSCURRENT"]
        assert isinstance(got["CreatedDate"], dt.datetime)
        assert "SecretBinary" not in got
        assert sm.describe_secret(SecretId=secret_id)["ARN"] == full


def test_name_with_all_allowed_characters(sm):
    name = "Valid/_+=.@-Name-a1b2c3"
    out = sm.create_secret(Name=name, SecretString="x")
    assert out["Name"] == name
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "x"
    assert sm.get_secret_value(SecretId=out["ARN"])["SecretString"] == "x"


def test_invalid_name_rejected(sm):
    # Recorded AWS behaviour: ValidationException "Invalid name. Must be a valid name
    # containing alphanumeric characters, or any of the following: -/_+=.@!"
    for bad in ("Inv Name", "bad*name", "what?"):
        expect_error(VALIDATION_CODES, sm.create_secret, Name=bad, SecretString="x")


def test_missing_secret_is_resource_not_found(sm):
    expect_error("ResourceNotFoundException", sm.get_secret_value, SecretId="nope")
    expect_error("ResourceNotFoundException", sm.describe_secret, SecretId="nope")
    expect_error("ResourceNotFoundException", sm.put_secret_value, SecretId="nope", SecretString="x")
    expect_error("ResourceNotFoundException", sm.update_secret, SecretId="nope", Description="d")
    expect_error("ResourceNotFoundException", sm.list_secret_version_ids, SecretId="nope")
    expect_error(
        "ResourceNotFoundException", sm.get_secret_value,
        SecretId=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT_ID}:secret:nope-AbCdEf",
    )


def test_duplicate_name_is_resource_exists(sm):
    sm.create_secret(Name="dup", SecretString="a")
    expect_error("ResourceExistsException", sm.create_secret, Name="dup", SecretString="b")
    assert sm.get_secret_value(SecretId="dup")["SecretString"] == "a"


def test_binary_round_trip(sm):
    blob = bytes(range(256)) * 4
    sm.create_secret(Name="bin", SecretBinary=blob)
    got = sm.get_secret_value(SecretId="bin")
    assert got["SecretBinary"] == blob
    assert "SecretString" not in got
    sm.put_secret_value(SecretId="bin", SecretBinary=b"\x00\xff\x00")
    assert sm.get_secret_value(SecretId="bin")["SecretBinary"] == b"\x00\xff\x00"


def test_string_and_binary_together_rejected(sm):
    expect_error("InvalidParameterException", sm.create_secret, Name="both", SecretString="a",
                 SecretBinary=b"b")
    sm.create_secret(Name="one", SecretString="a")
    expect_error("InvalidParameterException", sm.put_secret_value, SecretId="one", SecretString="a",
                 SecretBinary=b"b")


def test_unicode_string_round_trip(sm):
    value = '{"user":"ädmin","pw":"p@ss wörd ✓ 🔑"}'
    sm.create_secret(Name="uni", SecretString=value)
    assert sm.get_secret_value(SecretId="uni")["SecretString"] == value


def test_value_size_limit_string(sm, sm_raw):
    sm.create_secret(Name="big", SecretString="a" * MAX_VALUE)
    assert len(sm.get_secret_value(SecretId="big")["SecretString"]) == MAX_VALUE
    # Over the model's max=65536: the error code is not documented (see VALIDATION_CODES).
    expect_error(VALIDATION_CODES, sm_raw.create_secret, Name="too-big", SecretString="a" * (MAX_VALUE + 1))
    expect_error(VALIDATION_CODES, sm_raw.put_secret_value, SecretId="big", SecretString="b" * (MAX_VALUE + 1))
    expect_error(VALIDATION_CODES, sm_raw.update_secret, SecretId="big", SecretString="c" * (MAX_VALUE + 1))
    assert secret_gone(sm, "too-big")
    assert sm.get_secret_value(SecretId="big")["SecretString"] == "a" * MAX_VALUE


def test_value_size_limit_binary(sm, sm_raw):
    sm.create_secret(Name="bigbin", SecretBinary=b"\x01" * MAX_VALUE)
    assert len(sm.get_secret_value(SecretId="bigbin")["SecretBinary"]) == MAX_VALUE
    expect_error(VALIDATION_CODES, sm_raw.put_secret_value, SecretId="bigbin", SecretBinary=b"\x02" * (MAX_VALUE + 1))


def test_secret_without_value(sm):
    out = sm.create_secret(Name="empty", Description="no value yet")
    assert out["Name"] == "empty"
    assert "VersionId" not in out
    parse_arn(out["ARN"])
    # Documented: "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT"
    expect_error("ResourceNotFoundException", sm.get_secret_value, SecretId="empty")
    desc = sm.describe_secret(SecretId="empty")
    assert desc["Name"] == "empty"
    assert desc["Description"] == "no value yet"
    assert "VersionIdsToStages" not in desc or desc["VersionIdsToStages"] == {}
    assert sm.list_secret_version_ids(SecretId="empty")["Versions"] == []
    put = sm.put_secret_value(SecretId="empty", SecretString="now")
    assert put["VersionStages"] == ["AWSCURRENT"]
    assert sm.get_secret_value(SecretId="empty")["SecretString"] == "now"


def test_get_by_version_id_and_stage(sm):
    v1 = sm.create_secret(Name="vs", SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId="vs", SecretString="two")["VersionId"]
    assert sm.get_secret_value(SecretId="vs", VersionId=v1)["SecretString"] == "one"
    assert sm.get_secret_value(SecretId="vs", VersionId=v2)["SecretString"] == "two"
    prev = sm.get_secret_value(SecretId="vs", VersionStage="AWSPREVIOUS")
    assert prev["SecretString"] == "one" and prev["VersionId"] == v1
    assert prev["VersionStages"] == ["AWSPREVIOUS"]
    both = sm.get_secret_value(SecretId="vs", VersionId=v2, VersionStage="AWSCURRENT")
    assert both["SecretString"] == "two"
    expect_error("ResourceNotFoundException", sm.get_secret_value, SecretId="vs", VersionStage="NOPE")
    expect_error("ResourceNotFoundException", sm.get_secret_value, SecretId="vs", VersionId=token())


def test_describe_fields(sm):
    out = sm.create_secret(Name="desc", SecretString="x", Description="hello",
                           Tags=[{"Key": "team", "Value": "core"}])
    d = sm.describe_secret(SecretId="desc")
    assert d["ARN"] == out["ARN"]
    assert d["Name"] == "desc"
    assert d["Description"] == "hello"
    assert d["VersionIdsToStages"] == {out["VersionId"]: ["AWSCURRENT"]}
    assert d["Tags"] == [{"Key": "team", "Value": "core"}]
    assert isinstance(d["CreatedDate"], dt.datetime)
    assert isinstance(d["LastChangedDate"], dt.datetime)
    assert d["LastChangedDate"] >= d["CreatedDate"]
    # Omitted when never retrieved (documented), absent until deleted, absent for the default key.
    assert "LastAccessedDate" not in d
    assert "DeletedDate" not in d
    assert "KmsKeyId" not in d
    assert d.get("RotationEnabled") in (None, False)


def test_last_accessed_date_is_midnight_utc(sm):
    sm.create_secret(Name="acc", SecretString="x")
    created = sm.describe_secret(SecretId="acc")["CreatedDate"]
    sm.get_secret_value(SecretId="acc")
    after = sm.describe_secret(SecretId="acc")
    # Day granularity (documented: "the resolution of this field is at the date level").
    # The server's clock may have been advanced by other tests, so compare with the
    # server's own CreatedDate, allowing a midnight rollover between the two calls.
    last = after["LastAccessedDate"]
    assert last in (midnight_utc(created), midnight_utc(created + dt.timedelta(minutes=1)))
    assert last == midnight_utc(last)


def test_update_description_only_creates_no_version(sm):
    v1 = sm.create_secret(Name="upd", SecretString="x")["VersionId"]
    before = sm.describe_secret(SecretId="upd")
    out = sm.update_secret(SecretId="upd", Description="new description")
    assert "VersionId" not in out
    assert out["Name"] == "upd" and out["ARN"] == before["ARN"]
    d = sm.describe_secret(SecretId="upd")
    assert d["Description"] == "new description"
    assert d["VersionIdsToStages"] == {v1: ["AWSCURRENT"]}
    assert d["LastChangedDate"] >= before["LastChangedDate"]


def test_update_value_moves_current_and_previous(sm):
    v1 = sm.create_secret(Name="upd2", SecretString="one")["VersionId"]
    tok = token()
    out = sm.update_secret(SecretId="upd2", SecretString="two", ClientRequestToken=tok)
    assert out["VersionId"] == tok
    assert sm.get_secret_value(SecretId="upd2")["SecretString"] == "two"
    assert sm.describe_secret(SecretId="upd2")["VersionIdsToStages"] == {
        v1: ["AWSPREVIOUS"], tok: ["AWSCURRENT"],
    }


def test_recreated_name_gets_new_suffix(sm):
    first = sm.create_secret(Name="again", SecretString="1")["ARN"]
    sm.delete_secret(SecretId="again", ForceDeleteWithoutRecovery=True)
    wait_until(lambda: secret_gone(sm, "again"), what="force-deleted secret to disappear")
    second = create_after_purge(sm, Name="again", SecretString="2")["ARN"]
    assert parse_arn(second)["name"] == "again"
    assert second != first  # a new random 6-character suffix
    expect_error("ResourceNotFoundException", sm.get_secret_value, SecretId=first)
    assert sm.get_secret_value(SecretId="again")["SecretString"] == "2"

