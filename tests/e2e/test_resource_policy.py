"""The resource-policy operations (PutResourcePolicy, GetResourcePolicy,
DeleteResourcePolicy, ListResourcePolicies, ValidateResourcePolicy) and what an attached
policy does to the calls that follow, through boto3."""

import json

from helpers import ACCOUNT_ID, REGION, error_message, expect_error

ADMIN = f"arn:aws:iam::{ACCOUNT_ID}:user/arca-admin"


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


READER = policy({
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:role/reader"},
    "Action": "secretsmanager:GetSecretValue",
    "Resource": "*",
})
PUBLIC = policy({"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue",
                 "Resource": "*"})


def test_put_get_list_delete(sm):
    arn = sm.create_secret(Name="rp", SecretString="v")["ARN"]
    # No policy: Get answers the secret alone (recorded: aws/aws-cdk#31566), List an
    # empty list.
    got = sm.get_resource_policy(SecretId="rp")
    assert got["ARN"] == arn and got["Name"] == "rp"
    assert "ResourcePolicy" not in got
    assert sm.list_resource_policies(SecretId="rp")["ResourcePolicies"] == []

    put = sm.put_resource_policy(SecretId="rp", ResourcePolicy=READER)
    assert (put["ARN"], put["Name"], put["PolicyName"]) == (arn, "rp", "default")
    got = sm.get_resource_policy(SecretId=arn)
    assert json.loads(got["ResourcePolicy"]) == json.loads(READER)
    assert got["PolicyName"] == "default"
    assert sm.list_resource_policies(SecretId="rp")["ResourcePolicies"] == [
        {"PolicyName": "default"}]

    deleted = sm.delete_resource_policy(SecretId="rp")
    assert (deleted["ARN"], deleted["Name"], deleted["PolicyName"]) == (arn, "rp", "default")
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId="rp")
    # Deleting again is not an error.
    sm.delete_resource_policy(SecretId="rp")


def test_only_the_default_policy_can_be_written(sm):
    sm.create_secret(Name="names", SecretString="v")
    expect_error("InvalidParameterException", sm.put_resource_policy, SecretId="names",
                 ResourcePolicy=READER, PolicyName="other")
    expect_error("InvalidParameterException", sm.delete_resource_policy, SecretId="names",
                 PolicyName="other")
    sm.put_resource_policy(SecretId="names", ResourcePolicy=READER, PolicyName="default")
    # The model: "If you specify a name other than default and no policy with that name
    # exists, the operation returns a ResourceNotFoundException."
    expect_error("ResourceNotFoundException", sm.get_resource_policy, SecretId="names",
                 PolicyName="other")


def test_malformed_policies_are_refused(sm):
    sm.create_secret(Name="bad", SecretString="v")
    for doc in ["not json", "{}", json.dumps({"Statement": {"Effect": "AllowSomething",
                                                             "Principal": "*", "Action": "*"}}),
                json.dumps({"Version": "2019-10-19", "Statement": {
                    "Effect": "Allow", "Principal": "*", "Action": "secretsmanager:*"}}),
                # A resource policy must name its principal.
                json.dumps({"Statement": {"Effect": "Allow", "Action": "secretsmanager:*"}})]:
        e = expect_error("MalformedPolicyDocumentException", sm.put_resource_policy,
                         SecretId="bad", ResourcePolicy=doc)
        assert error_message(e) == "This policy has invalid syntax."
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId="bad")


def test_block_public_policy(sm):
    sm.create_secret(Name="pub", SecretString="v")
    e = expect_error("PublicPolicyException", sm.put_resource_policy, SecretId="pub",
                     ResourcePolicy=PUBLIC, BlockPublicPolicy=True)
    assert "broad access" in error_message(e)
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId="pub")
    # Pinned to one source account, the same principal is not public.
    pinned = policy({"Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue",
                     "Resource": "*",
                     "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}})
    sm.put_resource_policy(SecretId="pub", ResourcePolicy=pinned, BlockPublicPolicy=True)
    # Unblocked (the default), a public policy is accepted.
    sm.put_resource_policy(SecretId="pub", ResourcePolicy=PUBLIC)
    assert json.loads(sm.get_resource_policy(SecretId="pub")["ResourcePolicy"]) == json.loads(PUBLIC)


def test_validate_resource_policy(sm):
    ok = sm.validate_resource_policy(ResourcePolicy=READER)
    assert ok["PolicyValidationPassed"] is True and ok["ValidationErrors"] == []
    broad = sm.validate_resource_policy(ResourcePolicy=PUBLIC)
    assert broad["PolicyValidationPassed"] is False
    assert [v["ErrorMessage"] for v in broad["ValidationErrors"]] == [
        "This resource policy grants broad access to your secret."]
    lockout = policy({"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:*",
                      "Resource": "*"})
    out = sm.validate_resource_policy(ResourcePolicy=lockout)
    assert out["PolicyValidationPassed"] is False
    assert "will not allow you to manage this secret" in out["ValidationErrors"][0]["ErrorMessage"]
    expect_error("MalformedPolicyDocumentException", sm.validate_resource_policy,
                 ResourcePolicy="{")
    sm.create_secret(Name="val", SecretString="v")
    assert sm.validate_resource_policy(SecretId="val", ResourcePolicy=READER)[
        "PolicyValidationPassed"] is True
    expect_error("ResourceNotFoundException", sm.validate_resource_policy, SecretId="nope",
                 ResourcePolicy=READER)


def test_missing_and_deleted_secrets(sm):
    for call, extra in [(sm.put_resource_policy, {"ResourcePolicy": READER}),
                        (sm.get_resource_policy, {}), (sm.delete_resource_policy, {}),
                        (sm.list_resource_policies, {})]:
        expect_error("ResourceNotFoundException", call, SecretId="missing", **extra)
    sm.create_secret(Name="gone", SecretString="v")
    sm.delete_secret(SecretId="gone", RecoveryWindowInDays=7)
    for call, extra in [(sm.put_resource_policy, {"ResourcePolicy": READER}),
                        (sm.get_resource_policy, {}), (sm.delete_resource_policy, {})]:
        e = expect_error("InvalidRequestException", call, SecretId="gone", **extra)
        assert "marked for deletion" in error_message(e)


def test_an_explicit_deny_in_the_resource_policy_refuses_the_caller(sm):
    sm.create_secret(Name="locked", SecretString="v")
    deny = policy({"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue",
                   "Resource": "*"})
    sm.put_resource_policy(SecretId="locked", ResourcePolicy=deny)
    e = expect_error("AccessDeniedException", sm.get_secret_value, SecretId="locked")
    # AWS's shape, quoting the SecretId as given (recorded: cloud-custodian#10055).
    assert error_message(e) == (
        f"User: {ADMIN} is not authorized to perform: secretsmanager:GetSecretValue "
        "on resource: locked with an explicit deny in a resource-based policy")
    # Other actions are untouched, and the policy can be removed again.
    assert sm.describe_secret(SecretId="locked")["Name"] == "locked"
    sm.delete_resource_policy(SecretId="locked")
    assert sm.get_secret_value(SecretId="locked")["SecretString"] == "v"


def test_conditions_read_the_request(sm):
    sm.create_secret(Name="staged", SecretString="v1")
    sm.put_secret_value(SecretId="staged", SecretString="v2")
    # Deny reading any version but AWSCURRENT (the VersionStage condition key).
    deny_old = policy({"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue",
                       "Resource": "*",
                       "Condition": {"StringEquals": {"secretsmanager:VersionStage": "AWSPREVIOUS"}}})
    sm.put_resource_policy(SecretId="staged", ResourcePolicy=deny_old)
    assert sm.get_secret_value(SecretId="staged")["SecretString"] == "v2"
    expect_error("AccessDeniedException", sm.get_secret_value, SecretId="staged",
                 VersionStage="AWSPREVIOUS")
    # Deny unless TLS (aws:SecureTransport): this suite's server speaks plain HTTP.
    tls_only = policy({"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:*",
                       "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})
    sm.create_secret(Name="tls-only", SecretString="v")
    sm.put_resource_policy(SecretId="tls-only", ResourcePolicy=tls_only)
    expect_error("AccessDeniedException", sm.get_secret_value, SecretId="tls-only")
    expect_error("AccessDeniedException", sm.delete_resource_policy, SecretId="tls-only")
    # Tags of the secret (secretsmanager:ResourceTag/...).
    by_tag = policy({"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue",
                     "Resource": "*",
                     "Condition": {"StringEquals": {"secretsmanager:ResourceTag/env": "prod"}}})
    sm.create_secret(Name="tagged", SecretString="v", Tags=[{"Key": "env", "Value": "dev"}])
    sm.put_resource_policy(SecretId="tagged", ResourcePolicy=by_tag)
    assert sm.get_secret_value(SecretId="tagged")["SecretString"] == "v"
    sm.tag_resource(SecretId="tagged", Tags=[{"Key": "env", "Value": "prod"}])
    expect_error("AccessDeniedException", sm.get_secret_value, SecretId="tagged")


def test_batch_reports_each_refused_secret(sm):
    sm.create_secret(Name="b-open", SecretString="open")
    arn = sm.create_secret(Name="b-shut", SecretString="shut")["ARN"]
    sm.put_resource_policy(SecretId="b-shut", ResourcePolicy=policy(
        {"Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue",
         "Resource": "*"}))
    out = sm.batch_get_secret_value(SecretIdList=["b-open", "b-shut"])
    assert [v["SecretString"] for v in out["SecretValues"]] == ["open"]
    assert [(e["SecretId"], e["ErrorCode"]) for e in out["Errors"]] == [
        ("b-shut", "AccessDeniedException")]
    # By filter too: the refused secret is reported by its ARN.
    out = sm.batch_get_secret_value(Filters=[{"Key": "name", "Values": ["b-"]}])
    assert [v["SecretString"] for v in out["SecretValues"]] == ["open"]
    assert [(e["SecretId"], e["ErrorCode"]) for e in out["Errors"]] == [
        (arn, "AccessDeniedException")]


def test_the_aws_cli_writes_and_reads_a_policy(aws, sm):
    sm.create_secret(Name="cli-rp", SecretString="v")
    out = aws("put-resource-policy", "--secret-id", "cli-rp", "--resource-policy", READER,
              "--block-public-policy")
    assert out.json["Name"] == "cli-rp"
    got = aws("get-resource-policy", "--secret-id", "cli-rp").json
    assert json.loads(got["ResourcePolicy"]) == json.loads(READER)
    assert REGION in got["ARN"]
