"""Principals end to end: IAM users with their own access keys and policies, roles
assumed through STS (boto3, and the aws CLI's role provider), and what each may do,
with IAM's and STS's errors. The server is shared by the session and keeps IAM entities
across tests, so every test names its own."""

import json
import os
import subprocess
import uuid

import boto3
import pytest
from botocore.config import Config

from conftest import _aws_executable
from helpers import (ACCESS_KEY, ACCOUNT_ID, REGION, SECRET_KEY, error_message, expect_error,
                     lookup_trail, wait_until)

CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5,
                read_timeout=30)


def policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def client(server):
    """client(service, **credentials) -> a boto3 client against the server."""

    def make(service, access_key=ACCESS_KEY, secret_key=SECRET_KEY, token=None):
        return boto3.session.Session(
            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            aws_session_token=token, region_name=REGION,
        ).client(service, endpoint_url=server.endpoint, config=CONFIG)

    return make


@pytest.fixture
def iam(client):
    return client("iam")


def user_with_key(iam, name, *statements):
    iam.create_user(UserName=name)
    if statements:
        iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=policy(*statements))
    k = iam.create_access_key(UserName=name)["AccessKey"]
    return k["AccessKeyId"], k["SecretAccessKey"]


def test_user_reads_one_secret_and_is_refused_on_another(sm, iam, client):
    one = sm.create_secret(Name=unique("app/one"), SecretString="first")["ARN"]
    two_name = unique("app/two")
    sm.create_secret(Name=two_name, SecretString="second")
    name = unique("alice")
    key, secret = user_with_key(iam, name, {
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": one})
    as_user = client("secretsmanager", key, secret)
    assert as_user.get_secret_value(SecretId=one)["SecretString"] == "first"
    e = expect_error("AccessDeniedException", as_user.get_secret_value, SecretId=two_name)
    assert error_message(e) == (
        f"User: arn:aws:iam::{ACCOUNT_ID}:user/{name} is not authorized to perform: "
        f"secretsmanager:GetSecretValue on resource: {two_name} because no identity-based "
        "policy allows the secretsmanager:GetSecretValue action")
    # Nothing else is allowed either: not a write on the readable secret, not a list.
    expect_error("AccessDeniedException", as_user.put_secret_value, SecretId=one,
                 SecretString="x")
    expect_error("AccessDeniedException", as_user.list_secrets)
    # Who the key belongs to.
    who = client("sts", key, secret).get_caller_identity()
    assert who["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/{name}"
    assert who["Account"] == ACCOUNT_ID and who["UserId"].startswith("AIDA")
    # The user may not manage IAM, nor event rules.
    e = expect_error("AccessDenied", client("iam", key, secret).create_user,
                     UserName=unique("mallory"), status=403)
    assert "iam:CreateUser" in error_message(e)
    expect_error("AccessDeniedException", client("events", key, secret).list_rules)

    # A policy change takes effect at once; an explicit deny wins over the allow.
    iam.put_user_policy(UserName=name, PolicyName="deny", PolicyDocument=policy({
        "Effect": "Deny", "Action": "secretsmanager:*", "Resource": "*"}))
    e = expect_error("AccessDeniedException", as_user.get_secret_value, SecretId=one)
    assert "with an explicit deny in an identity-based policy" in error_message(e)
    iam.delete_user_policy(UserName=name, PolicyName="deny")
    assert as_user.get_secret_value(SecretId=one)["SecretString"] == "first"

    # The trail names the user: CloudTrail's userIdentity, and LookupEvents by Username.
    ct = client("cloudtrail")

    def reads_by_user():
        recs = [r for r in lookup_trail(ct, Username=name) if r["eventName"] == "GetSecretValue"]
        return recs or None

    recs = wait_until(reads_by_user, what="the user's reads in the trail")
    who = recs[0]["userIdentity"]
    assert who["type"] == "IAMUser" and who["userName"] == name, who
    assert who["arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/{name}", who
    assert who["accessKeyId"] == key and who["principalId"].startswith("AIDA"), who
    refused = [r for r in recs if r.get("errorCode") == "AccessDeniedException"]
    assert refused, "the refused read is recorded too"

    # A deleted key stops working.
    iam.delete_access_key(UserName=name, AccessKeyId=key)
    expect_error("UnrecognizedClientException", as_user.get_secret_value, SecretId=one)


def test_variables_and_tags_in_user_policies(sm, iam, client):
    name = unique("bob")
    mine = sm.create_secret(Name=f"home/{name}/db", SecretString="mine")["ARN"]
    other = sm.create_secret(Name=unique("home/carol/db"), SecretString="theirs")["ARN"]
    tagged = sm.create_secret(Name=unique("tagged"), SecretString="t",
                              Tags=[{"Key": "team", "Value": "blue"}])["ARN"]
    key, secret = user_with_key(iam, name, {
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
        "Resource": "arn:aws:secretsmanager:*:*:secret:home/${aws:username}/*",
    }, {
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*",
        "Condition": {"StringEquals": {"secretsmanager:ResourceTag/team": "blue"}},
    })
    as_user = client("secretsmanager", key, secret)
    assert as_user.get_secret_value(SecretId=mine)["SecretString"] == "mine"
    assert as_user.get_secret_value(SecretId=tagged)["SecretString"] == "t"
    expect_error("AccessDeniedException", as_user.get_secret_value, SecretId=other)


def test_managed_policies_attach_and_detach(sm, iam, client):
    arn = sm.create_secret(Name=unique("managed"), SecretString="m")["ARN"]
    name = unique("dave")
    key, secret = user_with_key(iam, name)
    as_user = client("secretsmanager", key, secret)
    expect_error("AccessDeniedException", as_user.get_secret_value, SecretId=arn)

    pname = unique("read-managed")
    created = iam.create_policy(PolicyName=pname, PolicyDocument=policy({
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn}))
    parn = created["Policy"]["Arn"]
    assert parn == f"arn:aws:iam::{ACCOUNT_ID}:policy/{pname}"
    iam.attach_user_policy(UserName=name, PolicyArn=parn)
    assert as_user.get_secret_value(SecretId=arn)["SecretString"] == "m"
    attached = iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
    assert attached == [{"PolicyName": pname, "PolicyArn": parn}]
    assert iam.get_policy(PolicyArn=parn)["Policy"]["AttachmentCount"] == 1
    e = expect_error("DeleteConflict", iam.delete_policy, PolicyArn=parn, status=409)
    assert error_message(e) == "Cannot delete a policy attached to entities."

    iam.detach_user_policy(UserName=name, PolicyArn=parn)
    expect_error("AccessDeniedException", as_user.get_secret_value, SecretId=arn)
    iam.delete_policy(PolicyArn=parn)
    expect_error("NoSuchEntity", iam.get_policy, PolicyArn=parn, status=404)

    # An AWS managed policy gives what its name says.
    iam.attach_user_policy(UserName=name,
                           PolicyArn="arn:aws:iam::aws:policy/SecretsManagerReadWrite")
    assert as_user.get_secret_value(SecretId=arn)["SecretString"] == "m"
    as_user.put_secret_value(SecretId=arn, SecretString="m2")
    expect_error("NoSuchEntity", iam.attach_user_policy, UserName=name,
                 PolicyArn=f"arn:aws:iam::{ACCOUNT_ID}:policy/none", status=404)


def test_iam_errors(iam, client):
    name = unique("erin")
    iam.create_user(UserName=name)
    # IAM calls are in the trail too, with their parameters.
    ct = client("cloudtrail")
    rec = wait_until(lambda: next((r for r in lookup_trail(ct, EventName="CreateUser")
                                   if r["requestParameters"].get("userName") == name), None),
                     what="the CreateUser record")
    assert rec["eventSource"] == "iam.amazonaws.com"
    e = expect_error("EntityAlreadyExists", iam.create_user, UserName=name, status=409)
    assert error_message(e) == f"User with name {name} already exists."
    # Names are unique without regard to case.
    expect_error("EntityAlreadyExists", iam.create_user, UserName=name.upper(), status=409)
    e = expect_error("NoSuchEntity", iam.get_user, UserName=name + "x", status=404)
    assert error_message(e) == f"The user with name {name}x cannot be found."
    expect_error("ValidationError", iam.create_user, UserName="has space")
    e = expect_error("MalformedPolicyDocument", iam.put_user_policy, UserName=name,
                     PolicyName="bad", PolicyDocument='{"Version": "2012-10-17"}')
    e = expect_error("NoSuchEntity", iam.get_user_policy, UserName=name, PolicyName="none",
                     status=404)
    assert error_message(e) == "The user policy with name none cannot be found."

    k1 = iam.create_access_key(UserName=name)["AccessKey"]["AccessKeyId"]
    iam.create_access_key(UserName=name)
    e = expect_error("LimitExceeded", iam.create_access_key, UserName=name, status=409)
    assert error_message(e) == "Cannot exceed quota for AccessKeysPerUser: 2"
    listed = iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
    assert len(listed) == 2 and all(k["Status"] == "Active" for k in listed)
    e = expect_error("DeleteConflict", iam.delete_user, UserName=name, status=409)
    assert error_message(e) == "Cannot delete entity, must delete access keys first."
    for k in listed:
        iam.delete_access_key(UserName=name, AccessKeyId=k["AccessKeyId"])
    e = expect_error("NoSuchEntity", iam.delete_access_key, UserName=name, AccessKeyId=k1,
                     status=404)
    assert error_message(e) == f"The Access Key with id {k1} cannot be found."
    iam.delete_user(UserName=name)
    expect_error("NoSuchEntity", iam.delete_user, UserName=name, status=404)
    assert name not in [u["UserName"] for u in iam.list_users()["Users"]]


def make_role(iam, name, trust_principal, *statements, max_session=None):
    kwargs = {"MaxSessionDuration": max_session} if max_session else {}
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=policy({
        "Effect": "Allow", "Principal": {"AWS": trust_principal}, "Action": "sts:AssumeRole"}),
        **kwargs)
    if statements:
        iam.put_role_policy(RoleName=name, PolicyName="p", PolicyDocument=policy(*statements))
    return f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"


def test_assumed_role_credentials_work_until_they_expire(server, sm, iam, client):
    arn = sm.create_secret(Name=unique("role-read"), SecretString="via-role")["ARN"]
    other = sm.create_secret(Name=unique("role-other"), SecretString="no")["ARN"]
    role = unique("reader")
    role_arn = make_role(iam, role, f"arn:aws:iam::{ACCOUNT_ID}:root", {
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn})
    got = iam.get_role(RoleName=role)["Role"]
    assert got["Arn"] == role_arn and got["MaxSessionDuration"] == 3600
    assert got["AssumeRolePolicyDocument"]["Statement"][0]["Action"] == "sts:AssumeRole"

    sts = client("sts")
    out = sts.assume_role(RoleArn=role_arn, RoleSessionName="job-1", DurationSeconds=900)
    c = out["Credentials"]
    assert c["AccessKeyId"].startswith("ASIA")
    assert out["AssumedRoleUser"]["Arn"] == (
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/job-1")
    assert out["AssumedRoleUser"]["AssumedRoleId"] == f"{got['RoleId']}:job-1"
    as_role = client("secretsmanager", c["AccessKeyId"], c["SecretAccessKey"],
                     c["SessionToken"])
    assert as_role.get_secret_value(SecretId=arn)["SecretString"] == "via-role"
    e = expect_error("AccessDeniedException", as_role.get_secret_value, SecretId=other)
    assert error_message(e).startswith(
        f"User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/job-1 is not authorized")
    who = client("sts", c["AccessKeyId"], c["SecretAccessKey"],
                 c["SessionToken"]).get_caller_identity()
    assert who["Arn"] == out["AssumedRoleUser"]["Arn"]

    # A token that is not the session's, or no token at all, is not accepted.
    expect_error("UnrecognizedClientException",
                 client("secretsmanager", c["AccessKeyId"], c["SecretAccessKey"],
                        "AAAA" + c["SessionToken"][4:]).get_secret_value, SecretId=arn)
    expect_error("UnrecognizedClientException",
                 client("secretsmanager", c["AccessKeyId"], c["SecretAccessKey"])
                 .get_secret_value, SecretId=arn)

    # Past its expiry (the service clock moved on), the session is refused.
    server.advance_clock(901)
    e = expect_error("ExpiredTokenException", as_role.get_secret_value, SecretId=arn)
    assert error_message(e) == "The security token included in the request is expired"
    expect_error("ExpiredToken", client("sts", c["AccessKeyId"], c["SecretAccessKey"],
                                        c["SessionToken"]).get_caller_identity, status=403)


def test_assume_role_refusals_and_limits(iam, client):
    trusted = unique("frank")
    key, secret = user_with_key(iam, trusted, {
        "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    outsider = unique("grace")
    okey, osecret = user_with_key(iam, outsider, {
        "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"})
    role = unique("only-frank")
    role_arn = make_role(iam, role, f"arn:aws:iam::{ACCOUNT_ID}:user/{trusted}")
    client("sts", key, secret).assume_role(RoleArn=role_arn, RoleSessionName="ok")
    e = expect_error("AccessDenied", client("sts", okey, osecret).assume_role,
                     RoleArn=role_arn, RoleSessionName="no", status=403)
    assert error_message(e).startswith(
        f"User: arn:aws:iam::{ACCOUNT_ID}:user/{outsider} is not authorized to perform: "
        f"sts:AssumeRole on resource: {role_arn}")
    missing = f"arn:aws:iam::{ACCOUNT_ID}:role/{unique('none')}"
    expect_error("AccessDenied", client("sts").assume_role, RoleArn=missing,
                 RoleSessionName="xx", status=403)
    as_trusted = client("sts", key, secret)
    e = expect_error("ValidationError", as_trusted.assume_role, RoleArn=role_arn,
                     RoleSessionName="xx", DurationSeconds=7200)
    assert "MaxSessionDuration" in error_message(e)
    expect_error("ValidationError", as_trusted.assume_role, RoleArn=role_arn,
                 RoleSessionName="bad name")

    # A session of a deleted role stops working (a role of the same name made again
    # does not inherit it).
    out = as_trusted.assume_role(RoleArn=role_arn, RoleSessionName="gone")["Credentials"]
    iam.delete_role(RoleName=role)
    make_role(iam, role, f"arn:aws:iam::{ACCOUNT_ID}:root")
    expect_error("UnrecognizedClientException",
                 client("secretsmanager", out["AccessKeyId"], out["SecretAccessKey"],
                        out["SessionToken"]).list_secrets)


def test_cli_role_profile_assumes_the_role(server, sm, iam, tmp_path):
    """The aws CLI's assume-role credential provider (role_arn + source_profile) gets its
    session from Arca's STS, then reads with it."""
    arn = sm.create_secret(Name=unique("cli-role"), SecretString="from-cli")["ARN"]
    role = unique("cli-reader")
    role_arn = make_role(iam, role, f"arn:aws:iam::{ACCOUNT_ID}:root", {
        "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn})
    (tmp_path / "config").write_text(
        f"[profile base]\nregion = {REGION}\n\n"
        f"[profile reader]\nrole_arn = {role_arn}\nsource_profile = base\nregion = {REGION}\n")
    (tmp_path / "credentials").write_text(
        f"[base]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
               AWS_ENDPOINT_URL=server.endpoint, AWS_EC2_METADATA_DISABLED="true",
               AWS_PAGER="", AWS_MAX_ATTEMPTS="1")

    def cli(*args):
        return subprocess.run([_aws_executable(), *args, "--profile", "reader",
                               "--output", "json"], env=env, capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL)

    p = cli("sts", "get-caller-identity")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["Arn"].startswith(
        f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{role}/")
    p = cli("secretsmanager", "get-secret-value", "--secret-id", arn)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["SecretString"] == "from-cli"
