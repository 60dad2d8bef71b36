"""Multi-Region secrets in one deployment (the SigV4 region scopes each request): the
three replication operations and AddReplicaRegions on CreateSecret, with boto3, checked
against botocore's model and the AWS texts recorded in the error table: a replica has the
primary's name and suffix in its own region, is read-only there, follows every write of
the primary (versions, labels, description, tags, rotation's new versions), shows
PrimaryRegion; the primary shows ReplicationStatus (InProgress, InSync, Failed with the
reason); promotion makes the replica standalone and the primary stops replicating to it."""

from __future__ import annotations

import pytest

from helpers import error_message, expect_error, parse_arn, token, wait_until

PRIMARY = "us-east-1"
REPLICA = "eu-west-1"
THIRD = "ap-south-1"
REPLICA_WRITE = ("Operation not permitted on a replica secret. "
                 "Call must be made in primary secret's region.")


@pytest.fixture
def p(make_client):
    return make_client(PRIMARY)


@pytest.fixture
def r(make_client):
    return make_client(REPLICA)


def status_of(sm, secret_id: str, region: str) -> dict | None:
    for s in sm.describe_secret(SecretId=secret_id).get("ReplicationStatus", []):
        if s["Region"] == region:
            return s
    return None


def in_sync(sm, secret_id: str, region: str) -> dict:
    return wait_until(lambda: (s := status_of(sm, secret_id, region)) and s["Status"] == "InSync" and s,
                      what=f"{region} InSync")


def replica_value(r, secret_id: str, expected: str, stage: str = "AWSCURRENT") -> str:
    def read():
        try:
            v = r.get_secret_value(SecretId=secret_id, VersionStage=stage)["SecretString"]
        except r.exceptions.ResourceNotFoundException:
            return None
        return v if v == expected else None
    return wait_until(read, what=f"replica value {expected!r}")


def test_create_with_replica_regions_replicates_name_suffix_and_value(p, r):
    out = p.create_secret(Name="rep/db", SecretString="v1", ClientRequestToken=token(),
                          AddReplicaRegions=[{"Region": REPLICA}])
    assert out["ReplicationStatus"] == [
        {"Region": REPLICA, "KmsKeyId": "alias/aws/secretsmanager", "Status": "InProgress"}]
    st = in_sync(p, "rep/db", REPLICA)
    assert st["StatusMessage"] == "Replication succeeded"
    assert replica_value(r, "rep/db", "v1") == "v1"
    d = r.describe_secret(SecretId="rep/db")
    pa, ra = parse_arn(out["ARN"]), parse_arn(d["ARN"])
    assert (ra["region"], ra["name"], ra["suffix"]) == (REPLICA, pa["name"], pa["suffix"])
    assert d["PrimaryRegion"] == PRIMARY
    assert "ReplicationStatus" not in d
    # The same version ids, and the replica is found by its own full ARN.
    assert r.get_secret_value(SecretId=d["ARN"])["VersionId"] == out["VersionId"]
    pd = p.describe_secret(SecretId="rep/db")
    assert pd["PrimaryRegion"] == PRIMARY
    # ListSecrets: the replica in its region, with PrimaryRegion and no ReplicationStatus.
    listed = [s for s in r.list_secrets()["SecretList"] if s["Name"] == "rep/db"]
    assert len(listed) == 1 and listed[0]["PrimaryRegion"] == PRIMARY
    assert "ReplicationStatus" not in listed[0]


def test_every_write_to_the_primary_reaches_the_replica(p, r):
    p.create_secret(Name="rep/follow", SecretString="a", AddReplicaRegions=[{"Region": REPLICA}])
    in_sync(p, "rep/follow", REPLICA)
    v2 = p.put_secret_value(SecretId="rep/follow", SecretString="b",
                            ClientRequestToken=token())["VersionId"]
    p.put_secret_value(SecretId="rep/follow", SecretBinary=b"\x00\xffbin",
                       VersionStages=["BIN"])
    p.update_secret(SecretId="rep/follow", Description="now described")
    p.tag_resource(SecretId="rep/follow", Tags=[{"Key": "team", "Value": "a"}])
    p.update_secret_version_stage(SecretId="rep/follow", VersionStage="BLUE", MoveToVersionId=v2)

    def replica_caught_up():
        d = r.describe_secret(SecretId="rep/follow")
        return (d.get("Description") == "now described" and d.get("Tags") == [{"Key": "team", "Value": "a"}]
                and "BLUE" in d["VersionIdsToStages"].get(v2, [])) and d
    d = wait_until(replica_caught_up, what="replica metadata")
    pd = p.describe_secret(SecretId="rep/follow")
    assert d["VersionIdsToStages"] == pd["VersionIdsToStages"]
    assert r.get_secret_value(SecretId="rep/follow")["SecretString"] == "b"
    assert r.get_secret_value(SecretId="rep/follow", VersionStage="BIN")["SecretBinary"] == b"\x00\xffbin"
    # Removing every tag leaves Tags [] on both, as on the primary.
    p.untag_resource(SecretId="rep/follow", TagKeys=["team"])
    wait_until(lambda: r.describe_secret(SecretId="rep/follow").get("Tags") == [], what="tags removed")


def test_a_replica_refuses_every_write(p, r):
    p.create_secret(Name="rep/ro", SecretString="v", AddReplicaRegions=[{"Region": REPLICA}])
    replica_value(r, "rep/ro", "v")
    writes = [
        lambda: r.put_secret_value(SecretId="rep/ro", SecretString="x"),
        lambda: r.update_secret(SecretId="rep/ro", Description="x"),
        lambda: r.tag_resource(SecretId="rep/ro", Tags=[{"Key": "k", "Value": "v"}]),
        lambda: r.untag_resource(SecretId="rep/ro", TagKeys=["k"]),
        lambda: r.rotate_secret(SecretId="rep/ro", RotationLambdaARN="arn:aws:lambda:eu-west-1:123456789012:function:f"),
        lambda: r.cancel_rotate_secret(SecretId="rep/ro"),
        lambda: r.delete_secret(SecretId="rep/ro"),
        lambda: r.delete_secret(SecretId="rep/ro", ForceDeleteWithoutRecovery=True),
        lambda: r.restore_secret(SecretId="rep/ro"),
        lambda: r.update_secret_version_stage(SecretId="rep/ro", VersionStage="X",
                                              MoveToVersionId=r.get_secret_value(SecretId="rep/ro")["VersionId"]),
        lambda: r.replicate_secret_to_regions(SecretId="rep/ro", AddReplicaRegions=[{"Region": THIRD}]),
        lambda: r.remove_regions_from_replication(SecretId="rep/ro", RemoveReplicaRegions=[PRIMARY]),
        lambda: r.put_resource_policy(SecretId="rep/ro", ResourcePolicy=POLICY),
        lambda: r.delete_resource_policy(SecretId="rep/ro"),
    ]
    for w in writes:
        e = expect_error("InvalidParameterException", w)
        assert error_message(e) == REPLICA_WRITE
    assert r.get_secret_value(SecretId="rep/ro")["SecretString"] == "v"


POLICY = ('{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
          '{"AWS":"arn:aws:iam::123456789012:role/reader"},'
          '"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}')


def test_the_resource_policy_is_replicated(p, r):
    """AWS replicates "the encrypted secret data and metadata such as tags and resource
    policies" to the replicas (Secrets Manager docs, "Replicate secrets across Regions")."""
    import json
    p.create_secret(Name="rep/policy", SecretString="v", AddReplicaRegions=[{"Region": REPLICA}])
    replica_value(r, "rep/policy", "v")
    p.put_resource_policy(SecretId="rep/policy", ResourcePolicy=POLICY)
    got = wait_until(lambda: r.get_resource_policy(SecretId="rep/policy").get("ResourcePolicy"),
                     what="the policy on the replica")
    assert json.loads(got) == json.loads(POLICY)
    p.delete_resource_policy(SecretId="rep/policy")
    wait_until(lambda: "ResourcePolicy" not in r.get_resource_policy(SecretId="rep/policy"),
               what="the policy gone from the replica")


def test_a_primary_with_replicas_cannot_be_deleted(p, r, make_client):
    arn = p.create_secret(Name="rep/keep", SecretString="v",
                          AddReplicaRegions=[{"Region": REPLICA}, {"Region": THIRD}])["ARN"]
    for force in (False, True):
        kwargs = {"ForceDeleteWithoutRecovery": True} if force else {}
        e = expect_error("InvalidParameterException", p.delete_secret, SecretId="rep/keep", **kwargs)
        assert error_message(e) == (f"You can't delete secret {arn} that still has replica "
                                    f"regions [{REPLICA}, {THIRD}].")
    in_sync(p, "rep/keep", THIRD)
    # Once the regions are removed, the replicas are gone and the primary can be deleted.
    out = p.remove_regions_from_replication(SecretId="rep/keep", RemoveReplicaRegions=[REPLICA, THIRD])
    assert out == {"ARN": arn, "ReplicationStatus": [], "ResponseMetadata": out["ResponseMetadata"]}
    for region in (REPLICA, THIRD):
        c = make_client(region)
        wait_until(lambda: not c.list_secrets()["SecretList"], what=f"replica in {region} removed")
    assert "PrimaryRegion" not in p.describe_secret(SecretId="rep/keep")
    p.delete_secret(SecretId="rep/keep", ForceDeleteWithoutRecovery=True)


def test_replicate_existing_secret_remove_one_region_and_errors(p, r, make_client, sm_raw):
    arn = p.create_secret(Name="rep/later", SecretString="v")["ARN"]
    out = p.replicate_secret_to_regions(SecretId="rep/later", AddReplicaRegions=[
        {"Region": REPLICA}, {"Region": THIRD, "KmsKeyId": ""}])
    assert out["ARN"] == arn
    assert [(s["Region"], s["Status"]) for s in out["ReplicationStatus"]] == [
        (REPLICA, "InProgress"), (THIRD, "InProgress")]
    in_sync(p, "rep/later", REPLICA)
    in_sync(p, "rep/later", THIRD)
    out = p.remove_regions_from_replication(SecretId="rep/later", RemoveReplicaRegions=[THIRD])
    assert [s["Region"] for s in out["ReplicationStatus"]] == [REPLICA]
    # Removing a region that is not a replica changes nothing.
    out = p.remove_regions_from_replication(SecretId="rep/later", RemoveReplicaRegions=["us-west-2"])
    assert [s["Region"] for s in out["ReplicationStatus"]] == [REPLICA]
    t = make_client(THIRD)
    wait_until(lambda: not t.list_secrets()["SecretList"], what="third region's replica removed")

    e = expect_error("InvalidParameterException", p.replicate_secret_to_regions,
                     SecretId="rep/later", AddReplicaRegions=[{"Region": PRIMARY}])
    assert error_message(e) == "Invalid replica region."
    e = expect_error("InvalidParameterException", p.create_secret, Name="rep/self", SecretString="v",
                     AddReplicaRegions=[{"Region": PRIMARY}])
    assert error_message(e) == "Invalid replica region."
    assert not [s for s in p.list_secrets()["SecretList"] if s["Name"] == "rep/self"]
    expect_error("ResourceNotFoundException", p.replicate_secret_to_regions,
                 SecretId="rep/none", AddReplicaRegions=[{"Region": REPLICA}])
    e = expect_error("ValidationException", sm_raw.replicate_secret_to_regions,
                     SecretId="rep/later", AddReplicaRegions=[{"Region": "Mars"}])
    assert error_message(e) == ("1 validation error detected: Value 'Mars' at "
                                "'addReplicaRegions.1.member.region' failed to satisfy constraint: "
                                "Member must satisfy regular expression pattern: ^([a-z]+-)+\\d+$")
    e = expect_error("ValidationException", sm_raw.replicate_secret_to_regions,
                     SecretId="rep/later", AddReplicaRegions=[])
    assert "addReplicaRegions" in error_message(e)
    e = expect_error("ValidationException", sm_raw.remove_regions_from_replication,
                     SecretId="rep/later")
    assert error_message(e) == ("1 validation error detected: Value null at 'removeReplicaRegions' "
                                "failed to satisfy constraint: Member must not be null")
    e = expect_error("InvalidParameterException", p.stop_replication_to_replica, SecretId="rep/later")
    expect_error("ResourceNotFoundException", r.stop_replication_to_replica, SecretId="rep/none")


def test_a_name_taken_in_the_replica_region_fails_unless_overwritten(p, r):
    r.create_secret(Name="rep/clash", SecretString="theirs")
    p.create_secret(Name="rep/clash", SecretString="ours", AddReplicaRegions=[{"Region": REPLICA}])
    st = wait_until(lambda: (s := status_of(p, "rep/clash", REPLICA)) and s["Status"] == "Failed" and s,
                    what="Failed status")
    assert st["StatusMessage"] == "Secret with this name already exists in this region"
    assert r.get_secret_value(SecretId="rep/clash")["SecretString"] == "theirs"
    # The primary keeps working.
    p.put_secret_value(SecretId="rep/clash", SecretString="ours2")
    assert p.get_secret_value(SecretId="rep/clash")["SecretString"] == "ours2"
    # Retried with ForceOverwriteReplicaSecret, the replica replaces the other secret.
    out = p.replicate_secret_to_regions(SecretId="rep/clash", AddReplicaRegions=[{"Region": REPLICA}],
                                        ForceOverwriteReplicaSecret=True)
    assert out["ReplicationStatus"][0]["Status"] == "InProgress"
    in_sync(p, "rep/clash", REPLICA)
    assert r.get_secret_value(SecretId="rep/clash")["SecretString"] == "ours2"
    assert r.describe_secret(SecretId="rep/clash")["PrimaryRegion"] == PRIMARY


def test_a_missing_key_in_the_replica_region_fails_and_the_primary_keeps_working(p, r):
    p.create_secret(Name="rep/key", SecretString="v",
                    AddReplicaRegions=[{"Region": REPLICA, "KmsKeyId": "alias/absent"}])
    st = wait_until(lambda: (s := status_of(p, "rep/key", REPLICA)) and s["Status"] == "Failed" and s,
                    what="Failed status")
    assert st["KmsKeyId"] == "alias/absent"
    assert "alias/absent" in st["StatusMessage"] and REPLICA in st["StatusMessage"]
    expect_error("ResourceNotFoundException", r.get_secret_value, SecretId="rep/key")
    p.put_secret_value(SecretId="rep/key", SecretString="v2")
    assert p.get_secret_value(SecretId="rep/key")["SecretString"] == "v2"
    assert status_of(p, "rep/key", REPLICA)["Status"] == "Failed"


def test_promotion_makes_a_standalone_secret_and_the_primary_stops_replicating(p, r, make_client):
    p.create_secret(Name="rep/promote", SecretString="v1", Description="d",
                    Tags=[{"Key": "k", "Value": "v"}],
                    AddReplicaRegions=[{"Region": REPLICA}, {"Region": THIRD}])
    replica_value(r, "rep/promote", "v1")
    rarn = r.describe_secret(SecretId="rep/promote")["ARN"]
    out = r.stop_replication_to_replica(SecretId=rarn)
    assert out["ARN"] == rarn
    d = r.describe_secret(SecretId="rep/promote")
    assert "PrimaryRegion" not in d and "ReplicationStatus" not in d
    assert d["Description"] == "d" and d["Tags"] == [{"Key": "k", "Value": "v"}]
    wait_until(lambda: [s["Region"] for s in p.describe_secret(SecretId="rep/promote")["ReplicationStatus"]] == [THIRD],
               what="the primary forgets the promoted region")
    # The promoted secret accepts writes; the primary's writes no longer reach it.
    r.put_secret_value(SecretId="rep/promote", SecretString="standalone")
    p.put_secret_value(SecretId="rep/promote", SecretString="v2")
    in_sync(p, "rep/promote", THIRD)
    replica_value(make_client(THIRD), "rep/promote", "v2")
    assert r.get_secret_value(SecretId="rep/promote")["SecretString"] == "standalone"
    # Another promotion of the same secret is refused: it is no replica now.
    expect_error("InvalidParameterException", r.stop_replication_to_replica, SecretId="rep/promote")


def test_rotation_runs_in_the_primary_and_its_versions_reach_the_replica(p, r):
    """RotateSecret with no function bound fails before it starts; what matters here is
    that the staged AWSPENDING placeholder and the labels it moves are replicated, and
    that the replica refuses the call (tested above). A full rotation with a function is
    in the two-deployment test."""
    p.create_secret(Name="rep/rot", SecretString="v1", AddReplicaRegions=[{"Region": REPLICA}])
    in_sync(p, "rep/rot", REPLICA)
    t = token()
    p.put_secret_value(SecretId="rep/rot", SecretString="pending", ClientRequestToken=t,
                       VersionStages=["AWSPENDING"])
    replica_value(r, "rep/rot", "pending", stage="AWSPENDING")
    cur = p.describe_secret(SecretId="rep/rot")
    old = [v for v, s in cur["VersionIdsToStages"].items() if "AWSCURRENT" in s][0]
    p.update_secret_version_stage(SecretId="rep/rot", VersionStage="AWSCURRENT",
                                  MoveToVersionId=t, RemoveFromVersionId=old)
    replica_value(r, "rep/rot", "pending")
    wait_until(lambda: r.describe_secret(SecretId="rep/rot")["VersionIdsToStages"]
               == p.describe_secret(SecretId="rep/rot")["VersionIdsToStages"], what="labels")


def test_list_secrets_primary_region_filter(p, r):
    p.create_secret(Name="rep/f1", SecretString="v", AddReplicaRegions=[{"Region": REPLICA}])
    r.create_secret(Name="rep/local", SecretString="v")
    replica_value(r, "rep/f1", "v")
    got = r.list_secrets(Filters=[{"Key": "primary-region", "Values": ["us-east"]}])["SecretList"]
    assert [s["Name"] for s in got] == ["rep/f1"]
    got = r.list_secrets(Filters=[{"Key": "primary-region", "Values": [REPLICA]}])["SecretList"]
    assert [s["Name"] for s in got] == ["rep/local"]
