"""Each region (from the SigV4 credential scope) is its own namespace."""

from helpers import ACCOUNT_ID, expect_error, list_all, names, parse_arn


def test_regions_are_separate_namespaces(make_client):
    use1 = make_client("us-east-1")
    euw1 = make_client("eu-west-1")
    a = use1.create_secret(Name="shared-name", SecretString="in us-east-1")
    b = euw1.create_secret(Name="shared-name", SecretString="in eu-west-1")
    assert parse_arn(a["ARN"])["region"] == "us-east-1"
    assert parse_arn(b["ARN"])["region"] == "eu-west-1"
    assert parse_arn(b["ARN"])["account"] == ACCOUNT_ID
    assert use1.get_secret_value(SecretId="shared-name")["SecretString"] == "in us-east-1"
    assert euw1.get_secret_value(SecretId="shared-name")["SecretString"] == "in eu-west-1"


def test_secret_invisible_in_other_region(make_client):
    use1 = make_client("us-east-1")
    apse2 = make_client("ap-southeast-2")
    use1.create_secret(Name="only-east", SecretString="x")
    expect_error("ResourceNotFoundException", apse2.get_secret_value, SecretId="only-east")
    expect_error("ResourceNotFoundException", apse2.describe_secret, SecretId="only-east")
    assert names(list_all(apse2)) == []
    assert names(list_all(use1)) == ["only-east"]
    out = apse2.batch_get_secret_value(SecretIdList=["only-east"])
    assert out["SecretValues"] == []
    assert out["Errors"][0]["ErrorCode"] == "ResourceNotFoundException"


def test_delete_in_one_region_leaves_the_other(make_client):
    use1 = make_client("us-east-1")
    euw1 = make_client("eu-west-1")
    use1.create_secret(Name="n", SecretString="east")
    euw1.create_secret(Name="n", SecretString="west")
    use1.delete_secret(SecretId="n", ForceDeleteWithoutRecovery=True)
    assert euw1.get_secret_value(SecretId="n")["SecretString"] == "west"
