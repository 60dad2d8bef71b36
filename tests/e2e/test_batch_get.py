"""BatchGetSecretValue: by SecretIdList (missing secrets become entries in Errors), by
Filters (with pagination), and the documented parameter combinations."""

from helpers import VALIDATION_CODES, expect_error


def by_name(values):
    return {v["Name"]: v for v in values}


def test_by_id_list(sm):
    a = sm.create_secret(Name="a", SecretString="A")
    sm.create_secret(Name="b", SecretBinary=b"\x00B")
    out = sm.batch_get_secret_value(SecretIdList=["a", a["ARN"][:-7], "b"])
    vals = out["SecretValues"]
    assert len(vals) == 3
    got = by_name(vals)
    assert got["a"]["SecretString"] == "A"
    assert got["a"]["ARN"] == a["ARN"]
    assert got["a"]["VersionId"] == a["VersionId"]
    assert got["a"]["VersionStages"] == ["AWSCURRENT"]
    assert "CreatedDate" in got["a"]
    assert got["b"]["SecretBinary"] == b"\x00B"
    assert out.get("Errors", []) == []


def test_missing_secret_is_an_error_entry(sm):
    sm.create_secret(Name="present", SecretString="P")
    out = sm.batch_get_secret_value(SecretIdList=["present", "absent"])
    assert [v["Name"] for v in out["SecretValues"]] == ["present"]
    errors = out["Errors"]
    assert len(errors) == 1
    assert errors[0]["SecretId"] == "absent"
    assert errors[0]["ErrorCode"] == "ResourceNotFoundException"
    assert errors[0].get("Message")


def test_by_filters(sm):
    for i in range(3):
        sm.create_secret(Name=f"app/{i}", SecretString=f"v{i}")
    sm.create_secret(Name="other", SecretString="o")
    out = sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": ["app/"]}])
    assert {v["Name"]: v["SecretString"] for v in out["SecretValues"]} == {
        "app/0": "v0", "app/1": "v1", "app/2": "v2"}


def test_filters_pagination(sm):
    for i in range(5):
        sm.create_secret(Name=f"p/{i}", SecretString=str(i))
    seen, next_token = [], None
    while True:
        kwargs = {"Filters": [{"Key": "name", "Values": ["p/"]}], "MaxResults": 2}
        if next_token:
            kwargs["NextToken"] = next_token
        page = sm.batch_get_secret_value(**kwargs)
        assert len(page["SecretValues"]) <= 2
        seen += [v["Name"] for v in page["SecretValues"]]
        next_token = page.get("NextToken")
        if not next_token:
            break
    assert sorted(seen) == [f"p/{i}" for i in range(5)]


def test_filters_skip_secrets_scheduled_for_deletion(sm):
    # Assumed to follow ListSecrets' default (scheduled secrets hidden); docs are silent.
    sm.create_secret(Name="f/value", SecretString="v")
    sm.create_secret(Name="f/deleted", SecretString="v")
    sm.delete_secret(SecretId="f/deleted")
    out = sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": ["f/"]}])
    assert [v["Name"] for v in out["SecretValues"]] == ["f/value"]


def test_id_list_and_filters_together_rejected(sm):
    # Documented: "You must include Filters or SecretIdList, but not both." Error code not
    # named; InvalidParameterException asserted.
    sm.create_secret(Name="x", SecretString="x")
    expect_error("InvalidParameterException", sm.batch_get_secret_value, SecretIdList=["x"],
                 Filters=[{"Key": "name", "Values": ["x"]}])


def test_neither_id_list_nor_filters_rejected(sm):
    expect_error("InvalidParameterException", sm.batch_get_secret_value)


def test_max_results_with_id_list_rejected(sm):
    # Documented: "To use this parameter [MaxResults], you must also use the Filters parameter."
    sm.create_secret(Name="x", SecretString="x")
    expect_error("InvalidParameterException", sm.batch_get_secret_value, SecretIdList=["x"], MaxResults=5)


def test_id_list_bounds(sm_raw):
    expect_error(VALIDATION_CODES, sm_raw.batch_get_secret_value, SecretIdList=[f"s{i}" for i in range(21)])
    expect_error(VALIDATION_CODES, sm_raw.batch_get_secret_value,
                 Filters=[{"Key": "name", "Values": ["x"]}], MaxResults=21)


def test_invalid_next_token(sm):
    expect_error("InvalidNextTokenException", sm.batch_get_secret_value,
                 Filters=[{"Key": "name", "Values": ["x"]}], NextToken="bogus")
