"""DeleteSecret (recovery windows, force deletion), the state of a secret scheduled for
deletion, RestoreSecret, and the background purge (driven by the dev clock)."""

import datetime as dt

import pytest

from helpers import (
    create_after_purge, expect_error, list_all, names, parse_arn, secret_gone, token, wait_until,
)

DAY = 86400


def test_default_recovery_window_is_30_days(sm):
    sm.create_secret(Name="d", SecretString="x")
    now = sm.describe_secret(SecretId="d")["CreatedDate"]
    out = sm.delete_secret(SecretId="d")
    assert out["Name"] == "d"
    parse_arn(out["ARN"])
    delta = out["DeletionDate"] - now
    assert abs(delta - dt.timedelta(days=30)) < dt.timedelta(minutes=2), delta
    desc = sm.describe_secret(SecretId="d")
    assert "DeletedDate" in desc


@pytest.mark.parametrize("days", [7, 30])
def test_recovery_window_bounds_accepted(sm, days):
    sm.create_secret(Name="w", SecretString="x")
    now = sm.describe_secret(SecretId="w")["CreatedDate"]
    out = sm.delete_secret(SecretId="w", RecoveryWindowInDays=days)
    assert abs(out["DeletionDate"] - now - dt.timedelta(days=days)) < dt.timedelta(minutes=2)


@pytest.mark.parametrize("days", [6, 31, 0, -1])
def test_recovery_window_out_of_range_rejected(sm, days):
    sm.create_secret(Name="w", SecretString="x")
    expect_error("InvalidParameterException", sm.delete_secret, SecretId="w", RecoveryWindowInDays=days)
    assert sm.get_secret_value(SecretId="w")["SecretString"] == "x"


def test_force_and_window_together_rejected(sm):
    sm.create_secret(Name="f", SecretString="x")
    expect_error("InvalidParameterException", sm.delete_secret, SecretId="f",
                 RecoveryWindowInDays=7, ForceDeleteWithoutRecovery=True)
    assert sm.get_secret_value(SecretId="f")["SecretString"] == "x"


def test_scheduled_secret_is_inaccessible(sm):
    sm.create_secret(Name="s", SecretString="x", Description="d")
    sm.delete_secret(SecretId="s", RecoveryWindowInDays=7)
    # Documented: InvalidRequestException - "The secret is scheduled for deletion."
    expect_error("InvalidRequestException", sm.get_secret_value, SecretId="s")
    expect_error("InvalidRequestException", sm.put_secret_value, SecretId="s", SecretString="y")
    expect_error("InvalidRequestException", sm.update_secret, SecretId="s", Description="new")
    expect_error("InvalidRequestException", sm.update_secret, SecretId="s", SecretString="new")
    desc = sm.describe_secret(SecretId="s")
    assert isinstance(desc["DeletedDate"], dt.datetime)
    assert desc["Description"] == "d"


def test_delete_twice_is_invalid_request(sm):
    # Not spelled out per operation; the error list's InvalidRequestException
    # ("The secret is scheduled for deletion") is the documented cause.
    sm.create_secret(Name="twice", SecretString="x")
    sm.delete_secret(SecretId="twice", RecoveryWindowInDays=7)
    expect_error("InvalidRequestException", sm.delete_secret, SecretId="twice", RecoveryWindowInDays=7)


def test_list_hides_scheduled_unless_include_planned_deletion(sm):
    sm.create_secret(Name="keep", SecretString="x")
    sm.create_secret(Name="gone", SecretString="x")
    sm.delete_secret(SecretId="gone")
    assert names(list_all(sm)) == ["keep"]
    listed = {e["Name"]: e for e in list_all(sm, IncludePlannedDeletion=True)}
    assert set(listed) == {"keep", "gone"}
    assert "DeletedDate" in listed["gone"]
    assert "DeletedDate" not in listed["keep"]


def test_create_same_name_while_scheduled_is_invalid_request(sm):
    sm.create_secret(Name="n", SecretString="x")
    sm.delete_secret(SecretId="n")
    e = expect_error("InvalidRequestException", sm.create_secret, Name="n", SecretString="y")
    assert "deletion" in e.response["Error"]["Message"].lower()


def test_restore(sm):
    arn = sm.create_secret(Name="r", SecretString="x")["ARN"]
    sm.delete_secret(SecretId="r", RecoveryWindowInDays=7)
    out = sm.restore_secret(SecretId="r")
    assert out == {**out, "ARN": arn, "Name": "r"}
    assert "DeletedDate" not in sm.describe_secret(SecretId="r")
    assert sm.get_secret_value(SecretId="r")["SecretString"] == "x"
    assert names(list_all(sm)) == ["r"]
    sm.put_secret_value(SecretId="r", SecretString="y", ClientRequestToken=token())
    assert sm.get_secret_value(SecretId="r")["SecretString"] == "y"


def test_restore_missing_is_not_found(sm):
    expect_error("ResourceNotFoundException", sm.restore_secret, SecretId="missing")


def test_delete_missing_is_not_found(sm):
    expect_error("ResourceNotFoundException", sm.delete_secret, SecretId="missing")


def test_force_delete_missing_succeeds(sm):
    # Documented: "If you forcibly delete an already deleted or nonexistent secret, the
    # operation does not return ResourceNotFoundException."
    sm.delete_secret(SecretId="never-existed", ForceDeleteWithoutRecovery=True)


def test_force_delete_removes_immediately(sm):
    sm.create_secret(Name="fd", SecretString="x")
    out = sm.delete_secret(SecretId="fd", ForceDeleteWithoutRecovery=True)
    assert out["Name"] == "fd"
    assert "DeletionDate" in out
    wait_until(lambda: secret_gone(sm, "fd"), what="force-deleted secret to be purged")
    expect_error("ResourceNotFoundException", sm.get_secret_value, SecretId="fd")
    assert names(list_all(sm, IncludePlannedDeletion=True)) == []
    # Force-deleting a secret that is already scheduled for deletion also works.
    sm.create_secret(Name="fd2", SecretString="x")
    sm.delete_secret(SecretId="fd2", RecoveryWindowInDays=7)
    sm.delete_secret(SecretId="fd2", ForceDeleteWithoutRecovery=True)
    wait_until(lambda: secret_gone(sm, "fd2"), what="scheduled secret to be force-deleted")


def test_purge_after_window(server, sm):
    first = sm.create_secret(Name="p", SecretString="x")["ARN"]
    sm.create_secret(Name="stay", SecretString="x")
    sm.delete_secret(SecretId="p", RecoveryWindowInDays=7)
    server.advance_clock(6 * DAY)
    # Still inside the window: nothing purged, still restorable.
    assert not secret_gone(sm, "p")
    server.advance_clock(DAY + 60)
    wait_until(lambda: secret_gone(sm, "p"), what="secret purged after its recovery window")
    expect_error("ResourceNotFoundException", sm.restore_secret, SecretId="p")
    assert names(list_all(sm, IncludePlannedDeletion=True)) == ["stay"]
    # The name is free again, with a new ARN suffix.
    second = create_after_purge(sm, Name="p", SecretString="y")["ARN"]
    assert second != first


def test_restore_just_before_window_end(server, sm):
    sm.create_secret(Name="late", SecretString="x")
    sm.delete_secret(SecretId="late", RecoveryWindowInDays=7)
    server.advance_clock(7 * DAY - 3600)
    sm.restore_secret(SecretId="late")
    server.advance_clock(2 * DAY)
    # Restored secrets are never purged.
    assert sm.get_secret_value(SecretId="late")["SecretString"] == "x"
