"""Rotation functions other than the built-ins, through boto3 against the real binary
(issue 3): a Lambda-style boto3 handler run by the command invoker through
contrib/lambda_shim.py (end to end, and with credentials that reach no other secret),
an HMAC-signed HTTP function, and fault injection: a function answering an error, a
command exiting 1, a command overrunning its timeout. After each fault AWSCURRENT still
holds the old value, a RotationFailed event names the step, and once the cause is gone a
retry (clock advanced past the backoff) completes the same version."""

from __future__ import annotations

import json
import time

import boto3
import pytest

from helpers import ACCESS_KEY, ACCOUNT_ID, REGION, SECRET_KEY, token, wait_until
from rotation_helpers import (Receiver, fn_arn, shim_argv, stage_holder, start_server,
                              stop_server, toml_function, value, write_hmac_secret)

CMD = fn_arn("arca-e2e-command")
CMD_SHORT = fn_arn("arca-e2e-command-short-timeout")
CMD_ROLE = fn_arn("arca-e2e-command-role")
ROTATOR_ROLE = "e2e-rotator"
HTTP = fn_arn("arca-e2e-http")
# The one place the suite waits for real time: a step that overruns this.
SHORT_TIMEOUT_SECS = 2


@pytest.fixture(scope="module")
def ctl(tmp_path_factory):
    """The handler's control directory (E2E_ROT_DIR): flag files and invocation logs."""
    return tmp_path_factory.mktemp("handler-ctl")


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    d = tmp_path_factory.mktemp("recv")
    r = Receiver(write_hmac_secret(d / "hmac.key"))
    r.key_file = d / "hmac.key"
    yield r
    r.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, receiver, ctl):
    config = (toml_function(CMD, type="command", argv=shim_argv(), timeout_secs=30)
              + toml_function(CMD_SHORT, type="command", argv=shim_argv(),
                              timeout_secs=SHORT_TIMEOUT_SECS)
              + toml_function(CMD_ROLE, type="command", argv=shim_argv(), timeout_secs=30,
                              role=ROTATOR_ROLE)
              + toml_function(HTTP, type="http", url=receiver.url,
                              hmac_secret_file=str(receiver.key_file), timeout_secs=10))
    srv = start_server(tmp_path_factory.mktemp("arca-rot-fn"), config,
                       extra_env={"E2E_ROT_DIR": str(ctl)})
    receiver.endpoint = srv.endpoint
    yield srv
    stop_server(srv)


@pytest.fixture
def sm(server):
    return server.client()


def key(arn: str) -> str:
    return arn.rsplit(":", 1)[-1].replace("/", "__")


def logged_steps(ctl, arn: str) -> list[str]:
    p = ctl / f"{key(arn)}.log"
    return p.read_text().split() if p.exists() else []


def test_boto3_handler_through_the_command_invoker_rotates_end_to_end(server, sm, ctl):
    arn = sm.create_secret(Name="rot/cmd", SecretString="before-rotation")["ARN"]
    other = sm.create_secret(Name="rot/cmd-other", SecretString="not-yours")["ARN"]
    (ctl / f"{key(arn)}.probe").write_text(other)
    old = stage_holder(sm, arn, "AWSCURRENT")
    tok = token()
    r = sm.rotate_secret(SecretId=arn, RotationLambdaARN=CMD, ClientRequestToken=tok,
                         RotationRules={"AutomaticallyAfterDays": 30})
    assert r["VersionId"] == tok
    server.wait_event(arn, "RotationSucceeded", timeout=20)
    assert logged_steps(ctl, arn) == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert stage_holder(sm, arn, "AWSCURRENT") == tok
    assert stage_holder(sm, arn, "AWSPREVIOUS") == old
    new = value(sm, arn)
    assert new != "before-rotation" and len(new) == 32
    assert value(sm, arn, "AWSPREVIOUS") == "before-rotation"
    # The step's credentials reach the rotated secret only: not another secret, not a list.
    result = (ctl / f"{key(arn)}.probe.result").read_text().split()
    assert result == ["AccessDeniedException"] * 3, result
    assert value(sm, other) == "not-yours"
    assert server.names(arn) == ["RotationStarted", "RotationSucceeded"]
    assert server.names(other) == []

    # The audit trail tells the whole story: the call, the service's own events, and the
    # handler's calls made with the step's scoped credentials.
    ct = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                               region_name=REGION).client("cloudtrail", endpoint_url=server.endpoint)

    def trail():
        evs = []
        for page in ct.get_paginator("lookup_events").paginate(
                LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": arn}]):
            evs.extend(json.loads(e["CloudTrailEvent"]) for e in page["Events"])
        evs.reverse()
        names = [e["eventName"] for e in evs]
        return evs if "RotationSucceeded" in names and "UpdateSecretVersionStage" in names else None

    evs = wait_until(trail, what="the rotation's records")
    names = [e["eventName"] for e in evs]
    for earlier, later in [("RotateSecret", "RotationStarted"), ("RotationStarted", "PutSecretValue"),
                           ("PutSecretValue", "UpdateSecretVersionStage"),
                           ("UpdateSecretVersionStage", "RotationSucceeded")]:
        assert names.index(earlier) < names.index(later), names
    done = [e for e in evs if e["eventName"] == "RotationSucceeded"][0]
    assert done["eventType"] == "AwsServiceEvent"
    assert done["userIdentity"] == {"accountId": ACCOUNT_ID, "invokedBy": "secretsmanager.amazonaws.com"}
    assert done["additionalEventData"]["SecretId"] == arn
    put = [e for e in evs if e["eventName"] == "PutSecretValue"][0]
    assert put["userIdentity"]["accessKeyId"] != ACCESS_KEY, "the step's own key"
    assert put["requestParameters"]["secretId"] == arn
    assert "secretString" not in put["requestParameters"]


def test_command_bound_to_a_role_rotates_with_that_role_only(server, sm, ctl):
    """A command bound to an IAM role runs with a session of it (as a Lambda function
    with its execution role): the role, limited to the secret being rotated, is all the
    command may do."""
    arn = sm.create_secret(Name="rot/cmd-role", SecretString="role-before")["ARN"]
    other = sm.create_secret(Name="rot/cmd-role-other", SecretString="not-yours")["ARN"]
    session = boto3.session.Session(aws_access_key_id=ACCESS_KEY,
                                    aws_secret_access_key=SECRET_KEY, region_name=REGION)
    iam = session.client("iam", endpoint_url=server.endpoint, verify=server.verify)
    iam.create_role(RoleName=ROTATOR_ROLE, AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole"}]}))
    iam.put_role_policy(RoleName=ROTATOR_ROLE, PolicyName="rotate-one", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Resource": arn,
             "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                        "secretsmanager:PutSecretValue",
                        "secretsmanager:UpdateSecretVersionStage"]},
            {"Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*"},
        ]}))
    (ctl / f"{key(arn)}.probe").write_text(other)
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=CMD_ROLE, ClientRequestToken=token())
    server.wait_event(arn, "RotationSucceeded", timeout=20)
    assert value(sm, arn) != "role-before"
    result = (ctl / f"{key(arn)}.probe.result").read_text().split()
    assert result == ["AccessDeniedException"] * 3, result
    # The trail names the role's session as the writer.
    ct = session.client("cloudtrail", endpoint_url=server.endpoint, verify=server.verify)

    def put_record():
        for page in ct.get_paginator("lookup_events").paginate(LookupAttributes=[
                {"AttributeKey": "EventName", "AttributeValue": "PutSecretValue"}]):
            for e in page["Events"]:
                rec = json.loads(e["CloudTrailEvent"])
                if rec["requestParameters"].get("secretId") == arn:
                    return rec
        return None

    rec = wait_until(put_record, what="the role's PutSecretValue record")
    who = rec["userIdentity"]
    assert who["type"] == "AssumedRole", who
    assert who["arn"] == (f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/{ROTATOR_ROLE}/"
                          "arca-e2e-command-role"), who
    assert who["sessionContext"]["sessionIssuer"]["userName"] == ROTATOR_ROLE
    assert who["accessKeyId"].startswith("ASIA")


def test_scheduled_rotation_through_the_command_invoker(server, sm, ctl):
    arn = sm.create_secret(Name="rot/cmd-schedule", SecretString="v0")["ARN"]
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=CMD, ClientRequestToken=token(),
                     RotationRules={"ScheduleExpression": "rate(2 days)"})
    server.wait_event(arn, "RotationSucceeded", timeout=20)
    first = value(sm, arn)
    server.advance_clock(3 * 86400)
    server.wait_event(arn, "RotationSucceeded", count=2, timeout=20)
    assert value(sm, arn) != first
    assert value(sm, arn, "AWSPREVIOUS") == first


def assert_failed_safely(server, sm, arn, old_version, old_value, tok, step):
    failed = server.wait_event(arn, "RotationFailed", timeout=20)
    assert failed["step"] == step, failed
    assert failed["versionId"] == tok, failed
    assert failed["error"], failed
    assert old_value not in str(failed)
    # AWSCURRENT did not move and still reads; the secret is intact.
    assert stage_holder(sm, arn, "AWSCURRENT") == old_version
    assert value(sm, arn) == old_value
    d = sm.describe_secret(SecretId=arn)
    assert d["RotationEnabled"] is True
    assert "RotationSucceeded" not in server.names(arn)
    sm.list_secret_version_ids(SecretId=arn)
    # The retry waits for its backoff: nothing happens without the clock moving.
    n = len(server.events(arn))
    time.sleep(0.5)
    assert len(server.events(arn)) == n, server.events(arn)


def retry_completes(server, sm, arn, tok, old_version):
    server.tolerate_failures(arn, 1)
    server.advance_clock(2 * 3600)
    ok = server.wait_event(arn, "RotationSucceeded", timeout=20)
    assert ok["versionId"] == tok, "the retry completes the same version"
    assert stage_holder(sm, arn, "AWSCURRENT") == tok
    assert stage_holder(sm, arn, "AWSPREVIOUS") == old_version
    names = server.names(arn)
    assert names == ["RotationStarted", "RotationFailed", "RotationSucceeded"], names


def test_http_function_error_at_set_secret_then_retry(server, sm, receiver):
    arn = sm.create_secret(Name="rot/http-500", SecretString="http-old")["ARN"]
    old = stage_holder(sm, arn, "AWSCURRENT")
    receiver.fail.add((arn, "setSecret"))
    tok = token()
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=HTTP, ClientRequestToken=tok)
    assert_failed_safely(server, sm, arn, old, "http-old", tok, "setSecret")
    assert "500" in server.events(arn)[-1]["error"]
    assert receiver.steps(arn) == ["createSecret", "setSecret"], "a failed step stops the rotation"
    assert stage_holder(sm, arn, "AWSPENDING") == tok
    receiver.fail.clear()
    retry_completes(server, sm, arn, tok, old)
    assert receiver.steps(arn)[-4:] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert {t for a, _, t in receiver.calls if a == arn} == {tok}
    assert receiver.bad_signatures == 0
    assert value(sm, arn) != "http-old"


def test_command_exiting_1_at_test_secret_then_retry(server, sm, ctl):
    arn = sm.create_secret(Name="rot/cmd-exit", SecretString="cmd-old")["ARN"]
    old = stage_holder(sm, arn, "AWSCURRENT")
    flag = ctl / f"{key(arn)}.fail.testSecret"
    flag.touch()
    tok = token()
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=CMD, ClientRequestToken=tok)
    assert_failed_safely(server, sm, arn, old, "cmd-old", tok, "testSecret")
    assert logged_steps(ctl, arn) == ["createSecret", "setSecret", "testSecret"]
    pending = sm.get_secret_value(SecretId=arn, VersionId=tok)["SecretString"]
    flag.unlink()
    retry_completes(server, sm, arn, tok, old)
    assert value(sm, arn) == pending, "the retry keeps the pending value createSecret made"


def test_command_timing_out_at_create_secret_then_retry(server, sm, ctl):
    arn = sm.create_secret(Name="rot/cmd-timeout", SecretString="slow-old")["ARN"]
    old = stage_holder(sm, arn, "AWSCURRENT")
    flag = ctl / f"{key(arn)}.sleep.createSecret"
    flag.touch()
    tok = token()
    t0 = time.monotonic()
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=CMD_SHORT, ClientRequestToken=tok)
    assert_failed_safely(server, sm, arn, old, "slow-old", tok, "createSecret")
    assert time.monotonic() - t0 < 15, "the step was cut off at its timeout"
    assert "timed out" in server.events(arn)[-1]["error"]
    flag.unlink()
    retry_completes(server, sm, arn, tok, old)
    assert value(sm, arn) != "slow-old"


def test_step_credentials_end_with_the_step(server, sm, ctl):
    from botocore.exceptions import ClientError
    from rotation_helpers import make_sm
    arn = sm.create_secret(Name="rot/cmd-leak", SecretString="leak-old")["ARN"]
    (ctl / f"{key(arn)}.leak").touch()
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=CMD, ClientRequestToken=token())
    server.wait_event(arn, "RotationSucceeded", timeout=20)
    key_id, secret = (ctl / f"{key(arn)}.creds").read_text().split("\n")
    assert key_id and secret
    leaked = make_sm(server.endpoint, access_key=key_id, secret_key=secret)
    with pytest.raises(ClientError) as info:
        leaked.get_secret_value(SecretId=arn)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403), info.value.response


def test_http_function_failing_twice_backs_off_and_retries_until_it_works(server, sm, receiver):
    arn = sm.create_secret(Name="rot/http-twice", SecretString="twice-old")["ARN"]
    old = stage_holder(sm, arn, "AWSCURRENT")
    receiver.fail.add((arn, "finishSecret"))
    tok = token()
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=HTTP, ClientRequestToken=tok)
    assert_failed_safely(server, sm, arn, old, "twice-old", tok, "finishSecret")
    server.advance_clock(2 * 3600)
    second = server.wait_event(arn, "RotationFailed", count=2, timeout=20)
    assert second["step"] == "finishSecret" and second["versionId"] == tok
    assert stage_holder(sm, arn, "AWSCURRENT") == old
    assert value(sm, arn) == "twice-old"
    receiver.fail.clear()
    server.tolerate_failures(arn, 2)
    server.advance_clock(2 * 3600)
    ok = server.wait_event(arn, "RotationSucceeded", timeout=20)
    assert ok["versionId"] == tok
    assert stage_holder(sm, arn, "AWSCURRENT") == tok
    assert server.names(arn) == ["RotationStarted", "RotationFailed", "RotationFailed",
                                 "RotationSucceeded"]


def test_cancel_after_a_failure_stops_the_retries_and_leaves_pending(server, sm, receiver):
    arn = sm.create_secret(Name="rot/http-cancel", SecretString="cancel-old")["ARN"]
    old = stage_holder(sm, arn, "AWSCURRENT")
    receiver.fail.add((arn, "testSecret"))
    tok = token()
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=HTTP, ClientRequestToken=tok)
    assert_failed_safely(server, sm, arn, old, "cancel-old", tok, "testSecret")
    calls = len(receiver.steps(arn))
    r = sm.cancel_rotate_secret(SecretId=arn)
    assert r.get("VersionId") == tok
    cancelled = server.events(arn)[-1]
    assert cancelled["name"] == "RotationCancelled" and cancelled["versionId"] == tok
    assert sm.describe_secret(SecretId=arn)["RotationEnabled"] is False
    receiver.fail.clear()
    server.advance_clock(2 * 3600)
    time.sleep(0.5)
    assert len(receiver.steps(arn)) == calls, "no retry after CancelRotateSecret"
    assert server.names(arn)[-1] == "RotationCancelled"
    assert value(sm, arn) == "cancel-old"
    # As in AWS, the partly made version keeps AWSPENDING until the caller removes it,
    # and until then a new rotation is refused.
    assert stage_holder(sm, arn, "AWSPENDING") == tok
    from helpers import expect_error
    expect_error("InvalidRequestException", sm.rotate_secret, SecretId=arn,
                 RotationLambdaARN=HTTP, ClientRequestToken=token())
    sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING",
                                   RemoveFromVersionId=tok)
    tok2 = token()
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=HTTP, ClientRequestToken=tok2)
    server.tolerate_failures(arn, 1)
    ok = server.wait_event(arn, "RotationSucceeded", timeout=20)
    assert ok["versionId"] == tok2 and stage_holder(sm, arn, "AWSCURRENT") == tok2
