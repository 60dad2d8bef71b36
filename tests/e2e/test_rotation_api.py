"""Rotation's API surface through boto3 (issue 3): RotateSecret's validation and errors,
the rotation fields of DescribeSecret/ListSecrets, CancelRotateSecret, ClientRequestToken
as the new version id, RotateImmediately=false (testSecret only), a manual change counting
as a rotation, the built-in `generic` rotator, and the schedule (a rotation by itself when
the window opens; a missed window caught up once)."""

from __future__ import annotations

import datetime as dt

import pytest

from helpers import VALIDATION_CODES, expect_error, token
from rotation_helpers import (Receiver, fn_arn, stage_holder, start_server, stop_server,
                              toml_function, value, write_hmac_secret)

GENERIC = fn_arn("arca-e2e-generic")
HTTP = fn_arn("arca-e2e-http")
UNBOUND = fn_arn("arca-e2e-nobody")


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    d = tmp_path_factory.mktemp("recv")
    r = Receiver(write_hmac_secret(d / "hmac.key"))
    r.key_file = d / "hmac.key"
    yield r
    r.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory, receiver):
    config = (toml_function(GENERIC, type="builtin", kind="generic")
              + toml_function(HTTP, type="http", url=receiver.url,
                              hmac_secret_file=str(receiver.key_file), timeout_secs=10))
    srv = start_server(tmp_path_factory.mktemp("arca-rot-api"), config)
    receiver.endpoint = srv.endpoint
    yield srv
    stop_server(srv)


@pytest.fixture
def sm(server):
    return server.client()


@pytest.fixture
def sm_raw(server):
    return server.client(validate=False)


def new_secret(sm, name: str, value: str = "initial-value") -> str:
    return sm.create_secret(Name=name, SecretString=value)["ARN"]


def rotate_and_wait(server, sm, arn: str, n: int = 1, **kwargs) -> str:
    kwargs.setdefault("RotationLambdaARN", GENERIC)
    kwargs.setdefault("ClientRequestToken", token())
    resp = sm.rotate_secret(SecretId=arn, **kwargs)
    server.wait_event(arn, "RotationSucceeded", count=n)
    return resp.get("VersionId")


# ---------- validation and errors ----------

@pytest.mark.parametrize("rules", [
    {"AutomaticallyAfterDays": 0},
    {"AutomaticallyAfterDays": 1001},
    {"ScheduleExpression": "every day"},
    {"ScheduleExpression": "rate(1 hours)"},
    {"ScheduleExpression": "rate(3 hours)"},
    {"ScheduleExpression": "cron(0 * * * ? *)"},
    {"AutomaticallyAfterDays": 7, "ScheduleExpression": "rate(7 days)"},
    {"ScheduleExpression": "rate(10 days)", "Duration": "25h"},
    {"ScheduleExpression": "rate(10 days)", "Duration": "0h"},
    {"ScheduleExpression": "rate(10 days)", "Duration": "three hours"},
], ids=["days-0", "days-1001", "bad-expression", "rate-1-hours", "rate-3-hours",
        "cron-hourly", "days-and-expression", "duration-25h", "duration-0h", "duration-words"])
def test_rotate_secret_rejects_invalid_rules(server, sm, sm_raw, rules):
    arn = new_secret(sm, "rot/invalid-rules")
    expect_error(VALIDATION_CODES, sm_raw.rotate_secret, SecretId=arn, RotationLambdaARN=GENERIC,
                 RotationRules=rules, ClientRequestToken=token())
    d = sm.describe_secret(SecretId=arn)
    assert not d.get("RotationEnabled"), d
    assert server.events(arn) == []


def test_rotate_secret_without_a_function_is_invalid_request(server, sm):
    arn = new_secret(sm, "rot/no-function")
    expect_error("InvalidRequestException", sm.rotate_secret, SecretId=arn,
                 RotationRules={"AutomaticallyAfterDays": 7}, ClientRequestToken=token())
    # A function Secrets Manager can't invoke: AccessDeniedException (recorded, LocalStack
    # test_rotate_secret_invalid_lambda_arn), and the secret shows no rotation fields.
    expect_error("AccessDeniedException", sm.rotate_secret, SecretId=arn,
                 RotationLambdaARN=UNBOUND, ClientRequestToken=token())
    d = sm.describe_secret(SecretId=arn)
    for member in ("RotationEnabled", "RotationLambdaARN", "RotationRules"):
        assert member not in d, d
    assert value(sm, arn) == "initial-value"


def test_rotate_secret_of_missing_secret_is_not_found(server, sm):
    expect_error("ResourceNotFoundException", sm.rotate_secret, SecretId="rot/nope",
                 RotationLambdaARN=GENERIC, ClientRequestToken=token())


def test_rotation_in_progress_is_invalid_request(server, sm):
    arn = new_secret(sm, "rot/in-progress")
    pending = token()
    sm.put_secret_value(SecretId=arn, SecretString="half-made", ClientRequestToken=pending,
                        VersionStages=["AWSPENDING"])
    expect_error("InvalidRequestException", sm.rotate_secret, SecretId=arn,
                 RotationLambdaARN=GENERIC, ClientRequestToken=token())
    assert value(sm, arn) == "initial-value"
    assert stage_holder(sm, arn, "AWSPENDING") == pending


# ---------- what Describe/List show; token; cancel ----------

def test_generic_rotation_replaces_the_value_and_keeps_the_old_as_previous(server, sm):
    arn = new_secret(sm, "rot/generic", '{"username": "app", "password": "old-password"}')
    old_version = stage_holder(sm, arn, "AWSCURRENT")
    tok = token()
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5)
    got = rotate_and_wait(server, sm, arn, ClientRequestToken=tok,
                          RotationRules={"AutomaticallyAfterDays": 30})
    assert got == tok, "RotateSecret answers the new version id (the ClientRequestToken)"
    assert stage_holder(sm, arn, "AWSCURRENT") == tok
    assert stage_holder(sm, arn, "AWSPREVIOUS") == old_version
    assert stage_holder(sm, arn, "AWSPENDING") in (None, tok)
    import json
    new = json.loads(value(sm, arn))
    assert new["username"] == "app"
    assert new["password"] != "old-password" and len(new["password"]) == 32
    assert json.loads(value(sm, arn, "AWSPREVIOUS"))["password"] == "old-password"
    names = server.names(arn)
    assert names == ["RotationStarted", "RotationSucceeded"], names
    evs = server.events(arn)
    assert all(e["versionId"] == tok and e["secretArn"] == arn for e in evs), evs
    assert all("old-password" not in str(e) and new["password"] not in str(e) for e in evs)

    d = sm.describe_secret(SecretId=arn)
    assert d["RotationEnabled"] is True
    assert d["RotationLambdaARN"] == GENERIC
    assert d["RotationRules"]["AutomaticallyAfterDays"] == 30
    assert d["LastRotatedDate"] >= before
    assert d["NextRotationDate"] > d["LastRotatedDate"] + dt.timedelta(days=29)
    listed = [s for s in sm.list_secrets()["SecretList"] if s["ARN"] == arn]
    assert len(listed) == 1
    for k in ("RotationEnabled", "RotationLambdaARN", "RotationRules", "LastRotatedDate",
              "NextRotationDate"):
        assert listed[0].get(k) == d[k], (k, listed[0].get(k), d[k])


def test_plain_string_secret_rotates_whole_value(server, sm):
    arn = new_secret(sm, "rot/generic-plain", "plain-old")
    rotate_and_wait(server, sm, arn)
    assert value(sm, arn) != "plain-old"
    assert value(sm, arn, "AWSPREVIOUS") == "plain-old"


def test_token_is_idempotent_and_a_used_token_cannot_start_a_new_rotation(server, sm):
    arn = new_secret(sm, "rot/token")
    tok = token()
    rotate_and_wait(server, sm, arn, ClientRequestToken=tok)
    # The version exists now: the same token cannot make another one.
    expect_error(("ResourceExistsException", "InvalidRequestException"), sm.rotate_secret,
                 SecretId=arn, RotationLambdaARN=GENERIC, ClientRequestToken=tok)
    assert stage_holder(sm, arn, "AWSCURRENT") == tok


def test_cancel_rotate_secret_disables_rotation_and_records_the_event(server, sm):
    arn = new_secret(sm, "rot/cancel")
    rotate_and_wait(server, sm, arn, RotationRules={"AutomaticallyAfterDays": 7})
    current = stage_holder(sm, arn, "AWSCURRENT")
    r = sm.cancel_rotate_secret(SecretId=arn)
    assert r["ARN"] == arn and r["Name"] == "rot/cancel"
    d = sm.describe_secret(SecretId=arn)
    assert d["RotationEnabled"] is False
    assert "NextRotationDate" not in d
    assert server.names(arn)[-1] == "RotationCancelled"
    # Nothing rotates any more, however late it gets.
    server.advance_clock(10 * 86400)
    import time
    time.sleep(0.5)
    assert server.count(arn, "RotationStarted") == 1
    assert stage_holder(sm, arn, "AWSCURRENT") == current
    # Rotation can be turned on again with the function remembered.
    sm.rotate_secret(SecretId=arn, ClientRequestToken=token())
    server.wait_event(arn, "RotationSucceeded", count=2)
    assert sm.describe_secret(SecretId=arn)["RotationEnabled"] is True


def test_rotate_immediately_false_runs_only_test_secret(server, sm, receiver):
    arn = new_secret(sm, "rot/test-only")
    current = stage_holder(sm, arn, "AWSCURRENT")
    r = sm.rotate_secret(SecretId=arn, RotationLambdaARN=HTTP, RotateImmediately=False,
                         RotationRules={"AutomaticallyAfterDays": 10}, ClientRequestToken=token())
    server.wait_event(arn, "RotationSucceeded")
    assert receiver.steps(arn) == ["testSecret"]
    assert receiver.bad_signatures == 0
    assert stage_holder(sm, arn, "AWSCURRENT") == current
    assert value(sm, arn) == "initial-value"
    assert stage_holder(sm, arn, "AWSPENDING") is None, "the test's AWSPENDING label is removed"
    d = sm.describe_secret(SecretId=arn)
    assert d["RotationEnabled"] is True and d["RotationLambdaARN"] == HTTP
    assert "NextRotationDate" in d
    assert "LastRotatedDate" not in d, "a test-only run is not a rotation"
    assert "VersionId" not in r or r["VersionId"] is None or r["VersionId"] != current


def test_http_function_rotates_all_four_steps_in_order(server, sm, receiver):
    arn = new_secret(sm, "rot/http")
    tok = rotate_and_wait(server, sm, arn, RotationLambdaARN=HTTP)
    assert receiver.steps(arn) == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    assert {t for a, _, t in receiver.calls if a == arn} == {tok}
    assert receiver.bad_signatures == 0
    assert stage_holder(sm, arn, "AWSCURRENT") == tok
    assert value(sm, arn) != "initial-value"


def test_manual_put_secret_value_counts_as_a_rotation(server, sm):
    arn = new_secret(sm, "rot/manual")
    rotate_and_wait(server, sm, arn, RotationRules={"AutomaticallyAfterDays": 3})
    d1 = sm.describe_secret(SecretId=arn)
    server.advance_clock(86400)
    sm.put_secret_value(SecretId=arn, SecretString="set-by-hand", ClientRequestToken=token())
    d2 = sm.describe_secret(SecretId=arn)
    assert d2["NextRotationDate"] - d1["NextRotationDate"] == dt.timedelta(days=1), (d1, d2)
    assert d2["LastRotatedDate"] > d1["LastRotatedDate"]
    # Not yet due, counted from the manual change: nothing rotates after 2 more days...
    server.advance_clock(2 * 86400 - 3600)
    import time
    time.sleep(0.3)
    assert server.count(arn, "RotationStarted") == 1
    assert value(sm, arn) == "set-by-hand"


# ---------- the schedule ----------

def test_schedule_rotates_by_itself_and_catches_up_once(server, sm):
    arn = new_secret(sm, "rot/schedule")
    rotate_and_wait(server, sm, arn, RotationRules={"AutomaticallyAfterDays": 1},
                    RotateImmediately=True)
    first = stage_holder(sm, arn, "AWSCURRENT")
    next1 = sm.describe_secret(SecretId=arn)["NextRotationDate"]

    server.advance_clock(25 * 3600)
    server.wait_event(arn, "RotationSucceeded", count=2)
    second = stage_holder(sm, arn, "AWSCURRENT")
    assert second != first
    assert stage_holder(sm, arn, "AWSPREVIOUS") == first
    d = sm.describe_secret(SecretId=arn)
    assert d["NextRotationDate"] > next1

    server.advance_clock(3 * 86400)
    server.wait_event(arn, "RotationSucceeded", count=3)
    # Give a wrongly repeated catch-up every chance to show up.
    import time
    for _ in range(3):
        server.advance_clock(0)
        time.sleep(0.3)
    names = server.names(arn)
    assert names.count("RotationSucceeded") == 3, names
    assert names.count("RotationStarted") == 3, names
    assert "RotationFailed" not in names
    assert sm.describe_secret(SecretId=arn)["NextRotationDate"] > d["NextRotationDate"]


def test_cron_schedule_with_duration_opens_the_window_at_the_given_hour(server, sm):
    arn = new_secret(sm, "rot/cron")
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=GENERIC, RotateImmediately=False,
                     RotationRules={"ScheduleExpression": "cron(0 8 * * ? *)", "Duration": "2h"},
                     ClientRequestToken=token())
    server.wait_event(arn, "RotationSucceeded")
    d = sm.describe_secret(SecretId=arn)
    rules = d["RotationRules"]
    assert rules["ScheduleExpression"] == "cron(0 8 * * ? *)" and rules["Duration"] == "2h", rules
    nxt = d["NextRotationDate"].astimezone(dt.timezone.utc)
    assert (nxt.hour, nxt.minute) == (8, 0), nxt
    # The service clock may have been moved by earlier tests: compare with its own time.
    started = dt.datetime.fromtimestamp(server.events(arn)[0]["time"], dt.timezone.utc)
    assert dt.timedelta(0) < nxt - started <= dt.timedelta(days=1), (started, nxt)


def test_rate_days_is_echoed_as_automatically_after_days(server, sm):
    arn = new_secret(sm, "rot/rate-days")
    rotate_and_wait(server, sm, arn, RotationRules={"ScheduleExpression": "rate(10 days)"})
    rules = sm.describe_secret(SecretId=arn)["RotationRules"]
    assert rules.get("ScheduleExpression") == "rate(10 days)"
    assert rules.get("AutomaticallyAfterDays") == 10


def test_rotate_secret_scheduled_for_deletion_is_invalid_request(server, sm):
    arn = new_secret(sm, "rot/deleted")
    sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    expect_error("InvalidRequestException", sm.rotate_secret, SecretId=arn,
                 RotationLambdaARN=GENERIC, ClientRequestToken=token())


def test_second_rotate_secret_while_one_is_queued_is_invalid_request(server, sm, receiver):
    arn = new_secret(sm, "rot/twice")
    receiver.fail.add((arn, "createSecret"))
    tok = token()
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=HTTP, ClientRequestToken=tok)
    expect_error("InvalidRequestException", sm.rotate_secret, SecretId=arn,
                 RotationLambdaARN=HTTP, ClientRequestToken=token())
    failed = server.wait_event(arn, "RotationFailed")
    assert failed["versionId"] == tok
    expect_error("InvalidRequestException", sm.rotate_secret, SecretId=arn,
                 RotationLambdaARN=HTTP, ClientRequestToken=token())
    receiver.fail.clear()
    server.tolerate_failures(arn, 1)
    server.advance_clock(2 * 3600)
    assert server.wait_event(arn, "RotationSucceeded")["versionId"] == tok
    assert server.count(arn, "RotationStarted") == 1


def test_event_records_have_the_documented_shape(server, sm):
    arn = new_secret(sm, "rot/events")
    tok = rotate_and_wait(server, sm, arn)
    evs = server.events(arn)
    keys = {"id", "time", "name", "region", "secretArn", "versionId", "step", "error", "detail"}
    for e in evs:
        assert set(e) == keys, e
        assert e["region"] == "us-east-1" and e["secretArn"] == arn and e["versionId"] == tok
        assert isinstance(e["time"], (int, float))
    assert [e["id"] for e in evs] == sorted(e["id"] for e in evs)
    assert evs[-1]["step"] is None and evs[-1]["error"] is None
    assert server.events(arn, after=evs[0]["id"]) == evs[1:]


def test_secret_in_another_region_rotates_in_its_region(server):
    from rotation_helpers import make_sm
    west = make_sm(server.endpoint, region="eu-west-1")
    arn = west.create_secret(Name="rot/west", SecretString="west-old")["ARN"]
    assert ":eu-west-1:" in arn
    rotate_and_wait(server, west, arn)
    assert value(west, arn) != "west-old"
    assert value(west, arn, "AWSPREVIOUS") == "west-old"
    assert server.events(arn)[-1]["region"] == "eu-west-1"


def test_no_rotation_while_deletion_is_scheduled_and_restore_resumes_it(server, sm):
    arn = new_secret(sm, "rot/delete-restore")
    rotate_and_wait(server, sm, arn, RotationRules={"AutomaticallyAfterDays": 1})
    sm.delete_secret(SecretId=arn, RecoveryWindowInDays=30)
    server.advance_clock(3 * 86400)
    import time
    time.sleep(0.5)
    assert server.count(arn, "RotationStarted") == 1, server.names(arn)
    sm.restore_secret(SecretId=arn)
    d = sm.describe_secret(SecretId=arn)
    assert d["RotationEnabled"] is True
    # The missed window is caught up once the secret is back (at the latest at the next
    # window, a day on).
    server.advance_clock(86400)
    try:
        server.wait_event(arn, "RotationSucceeded", count=2, timeout=5)
    except AssertionError:
        raise AssertionError(f"no rotation after RestoreSecret; DescribeSecret after restore: "
                             f"RotationEnabled={d.get('RotationEnabled')} "
                             f"NextRotationDate={d.get('NextRotationDate')}; "
                             f"events: {server.names(arn)}") from None
