"""The audit trail, through real clients: every call leaves exactly one CloudTrail-shaped
record (BatchGetSecretValue also one GetSecretValue record per secret, as AWS writes
them) with the documented fields and no secret material; refused calls, authentication
failures included, are recorded with their error code; CloudTrail's LookupEvents (boto3
and `aws cloudtrail lookup-events`) answers over the same records; `arca audit` filters
and follows; `arca audit verify` finds each kind of tampering; and a full queue drops
read records only, counting them in the trail."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import _aws_executable
from helpers import ACCESS_KEY, ACCOUNT_ID, REGION, SECRET_KEY, RawClient, wait_until
from test_admin import Server, _arca, _pair, prod_env  # noqa: F401 (fixture)

RECORD_KEYS = {
    "eventVersion", "userIdentity", "eventTime", "eventSource", "eventName", "awsRegion",
    "sourceIPAddress", "userAgent", "requestParameters", "responseElements", "requestID",
    "eventID", "readOnly", "eventType", "managementEvent", "recipientAccountId",
    "eventCategory",
}
SENSITIVE_KEYS = ("secretString", "secretBinary", "rotationToken", "SecretString", "SecretBinary")


def _ct(endpoint: str, key: str = ACCESS_KEY, secret: str = SECRET_KEY, validate: bool = True,
        region: str = REGION):
    return boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, region_name=region,
    ).client("cloudtrail", endpoint_url=endpoint,
             config=Config(retries={"max_attempts": 1}, parameter_validation=validate))


@pytest.fixture
def ct(server):
    return _ct(server.endpoint)


def _lookup_all(ct, **kwargs) -> list[dict]:
    out = []
    for page in ct.get_paginator("lookup_events").paginate(**kwargs):
        out.extend(page["Events"])
    return out


def _records(ct, **kwargs) -> list[dict]:
    return [json.loads(e["CloudTrailEvent"]) for e in _lookup_all(ct, **kwargs)]


def _request_id(fn, *args, **kwargs) -> tuple[str, str | None, dict | None]:
    """Calls fn; returns (request id, error code or None, response or None)."""
    try:
        r = fn(*args, **kwargs)
        return r["ResponseMetadata"]["RequestId"], None, r
    except ClientError as e:
        return e.response["ResponseMetadata"]["RequestId"], e.response["Error"]["Code"], None


def _no_secret_material(text: str, canaries: list[str]) -> None:
    for c in canaries:
        assert c not in text, f"secret material {c!r} found in: {text[:400]}"


def test_every_call_leaves_one_record_with_the_documented_fields(sm, make_client, ct):
    name = f"audit-{uuid.uuid4().hex[:8]}"
    canaries = [f"canary-{uuid.uuid4().hex}" for _ in range(4)]
    binary_canary = f"bin-canary-{uuid.uuid4().hex}".encode()
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=2)
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    calls: list[tuple[str, str, str | None, dict | None]] = []

    def call(op: str, fn, **kwargs):
        rid, err, resp = _request_id(fn, **kwargs)
        calls.append((op, rid, err, resp))
        return resp

    created = call("CreateSecret", sm.create_secret, Name=name, SecretString=canaries[0],
                   Tags=[{"Key": "team", "Value": "audit"}])
    arn = created["ARN"]
    call("GetSecretValue", sm.get_secret_value, SecretId=name)
    v2 = call("PutSecretValue", sm.put_secret_value, SecretId=name, SecretString=canaries[1])
    call("PutSecretValue", sm.put_secret_value, SecretId=arn, SecretBinary=binary_canary)
    call("DescribeSecret", sm.describe_secret, SecretId=name)
    call("ListSecrets", sm.list_secrets, Filters=[{"Key": "name", "Values": [name]}])
    call("ListSecretVersionIds", sm.list_secret_version_ids, SecretId=name)
    call("BatchGetSecretValue", sm.batch_get_secret_value, SecretIdList=[name, missing])
    call("UpdateSecret", sm.update_secret, SecretId=name, Description="d",
         SecretString=canaries[2])
    call("UpdateSecretVersionStage", sm.update_secret_version_stage, SecretId=name,
         VersionStage="AWSCURRENT", MoveToVersionId=v2["VersionId"],
         RemoveFromVersionId=sm.describe_secret(SecretId=name)["VersionIdsToStages"] and [
             v for v, s in sm.describe_secret(SecretId=name)["VersionIdsToStages"].items()
             if "AWSCURRENT" in s][0])
    call("TagResource", sm.tag_resource, SecretId=name, Tags=[{"Key": "k", "Value": "v"}])
    call("UntagResource", sm.untag_resource, SecretId=name, TagKeys=["k"])
    pw = call("GetRandomPassword", sm.get_random_password, PasswordLength=40)
    canaries.append(pw["RandomPassword"])
    call("RotateSecret", sm.rotate_secret, SecretId=name,
         RotationLambdaARN=f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:nope")
    call("CancelRotateSecret", sm.cancel_rotate_secret, SecretId=name)
    call("ReplicateSecretToRegions", sm.replicate_secret_to_regions, SecretId=name,
         AddReplicaRegions=[{"Region": "eu-west-1"}])
    call("RemoveRegionsFromReplication", sm.remove_regions_from_replication, SecretId=name,
         RemoveReplicaRegions=["eu-west-1"])
    call("StopReplicationToReplica", sm.stop_replication_to_replica, SecretId=name)
    call("GetResourcePolicy", sm.get_resource_policy, SecretId=name)
    call("GetSecretValue", sm.get_secret_value, SecretId=missing)
    deleted = call("DeleteSecret", sm.delete_secret, SecretId=name, RecoveryWindowInDays=7)
    call("RestoreSecret", sm.restore_secret, SecretId=name)
    call("DeleteSecret", sm.delete_secret, SecretId=name, ForceDeleteWithoutRecovery=True)
    assert deleted is not None

    by_request: dict[str, list[dict]] = {}

    def gathered():
        by_request.clear()
        for rec in _records(ct, StartTime=start):
            by_request.setdefault(rec["requestID"], []).append(rec)
        return all(rid in by_request for _, rid, _, _ in calls)

    wait_until(gathered, timeout=10, what="every call's record")
    canaries.append(base64.b64encode(binary_canary).decode())
    canaries.append(binary_canary.decode())

    for op, rid, err, resp in calls:
        recs = by_request[rid]
        if op == "BatchGetSecretValue":
            names = sorted(r["eventName"] for r in recs)
            assert names == ["BatchGetSecretValue", "GetSecretValue", "GetSecretValue"], recs
            members = {r["requestParameters"]["secretId"]: r for r in recs
                       if r["eventName"] == "GetSecretValue"}
            assert "errorCode" not in members[arn]
            assert members[missing]["errorCode"] == "ResourceNotFoundException"
            recs = [r for r in recs if r["eventName"] == op]
        assert len(recs) == 1, f"{op}: {recs}"
        rec = recs[0]
        assert RECORD_KEYS <= set(rec), f"{op}: missing {RECORD_KEYS - set(rec)}"
        assert rec["eventName"] == op
        assert rec["eventVersion"] == "1.11"
        assert rec["eventSource"] == "secretsmanager.amazonaws.com"
        assert rec["eventType"] == "AwsApiCall" and rec["eventCategory"] == "Management"
        assert rec["managementEvent"] is True
        assert rec["awsRegion"] == REGION and rec["recipientAccountId"] == ACCOUNT_ID
        assert rec["sourceIPAddress"] == "127.0.0.1"
        assert "Botocore" in rec["userAgent"] or "botocore" in rec["userAgent"]
        assert rec["userIdentity"]["accessKeyId"] == ACCESS_KEY
        assert rec["userIdentity"]["accountId"] == ACCOUNT_ID
        assert rec["userIdentity"]["type"] == "IAMUser"
        uuid.UUID(rec["eventID"])
        t = dt.datetime.strptime(rec["eventTime"], "%Y-%m-%dT%H:%M:%SZ").replace(
            tzinfo=dt.timezone.utc)
        assert start <= t <= dt.datetime.now(dt.timezone.utc)
        read_only = op.startswith(("Get", "List", "Describe", "BatchGet"))
        assert rec["readOnly"] is read_only, op
        params = rec["requestParameters"] or {}
        for k in SENSITIVE_KEYS:
            assert k not in params, f"{op} records {k}"
        if err:
            assert rec["errorCode"] == err, f"{op}: {rec}"
            assert rec["errorMessage"]
            assert rec["responseElements"] is None
        else:
            assert "errorCode" not in rec
            if read_only:
                assert rec["responseElements"] is None, op
            elif op == "DeleteSecret" and "deletionDate" in rec["responseElements"]:
                assert rec["responseElements"]["arn"] == arn
                assert rec["responseElements"]["name"] == name
            elif op != "GetRandomPassword":
                assert rec["responseElements"] == {"arn": arn}, f"{op}: {rec}"
        _no_secret_material(json.dumps(rec), canaries)

    create = by_request[calls[0][1]][0]
    assert create["requestParameters"]["name"] == name
    assert create["requestParameters"]["tags"] == [{"key": "team", "value": "audit"}]
    assert "clientRequestToken" in create["requestParameters"]
    get = by_request[calls[1][1]][0]
    assert get["requestParameters"] == {"secretId": name}
    delete = by_request[[c for c in calls if c[0] == "DeleteSecret"][0][1]][0]
    assert delete["requestParameters"] == {"secretId": name, "recoveryWindowInDays": 7}
    assert delete["responseElements"]["deletionDate"].endswith(("AM", "PM"))

    # LookupEvents shows each record's own fields beside the record.
    events = _lookup_all(ct, StartTime=start,
                         LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": name}])
    assert events, "records of the secret are found by its name"
    for e in events:
        rec = json.loads(e["CloudTrailEvent"])
        assert e["EventId"] == rec["eventID"] and e["EventName"] == rec["eventName"]
        assert e["ReadOnly"] == str(rec["readOnly"]).lower()
        if rec["eventType"] == "AwsServiceEvent":
            # What the service did on its own (CancelRotateSecret's RotationCancelled).
            assert "AccessKeyId" not in e and rec["additionalEventData"]["SecretId"] == arn
            continue
        assert e["AccessKeyId"] == ACCESS_KEY
        assert e["EventSource"] == "secretsmanager.amazonaws.com"
        assert e["Resources"][0]["ResourceType"] == "AWS::SecretsManager::Secret"
    # Newest first in commit order: a read's record is committed with its batch (within
    # the queue's 100 ms window), so it may follow a write made just after it; eventTime
    # has whole seconds, so such a pair can differ by one.
    times = [e["EventTime"].timestamp() for e in events]
    assert all(later >= earlier - 1 for later, earlier in zip(times, times[1:])), \
        "newest first"
    assert times[0] >= times[-1]


def test_refused_authentication_is_recorded_with_its_error(server, ct):
    raw = RawClient(server.endpoint)
    unknown = "AKIAUNKNOWN" + uuid.uuid4().hex[:9].upper()
    r = raw.call("secretsmanager.GetSecretValue", {"SecretId": "x"},
                 access_key=unknown, secret_key="whatever")
    assert r.error_type == "UnrecognizedClientException"
    bad_sig = raw.call("secretsmanager.ListSecrets", {}, secret_key="not-the-secret")
    assert bad_sig.error_type == "InvalidSignatureException"

    def found():
        return _records(ct, LookupAttributes=[
            {"AttributeKey": "AccessKeyId", "AttributeValue": unknown}])
    recs = wait_until(found, what="the refused call's record")
    assert len(recs) == 1
    assert recs[0]["errorCode"] == "UnrecognizedClientException"
    assert recs[0]["eventName"] == "GetSecretValue"
    assert recs[0]["userIdentity"]["accessKeyId"] == unknown
    assert recs[0]["requestParameters"] is None, "an unauthenticated body is not recorded"
    rid = {k.lower(): v for k, v in bad_sig.headers.items()}["x-amzn-requestid"]

    def sig_record():
        return [x for x in _records(ct, LookupAttributes=[
            {"AttributeKey": "EventName", "AttributeValue": "ListSecrets"}], MaxResults=50)
            if x["requestID"] == rid]
    rec = wait_until(sig_record, what="the bad signature's record")[0]
    assert rec["errorCode"] == "InvalidSignatureException"


def test_lookup_events_attributes_paging_and_errors(server, sm, ct):
    name = f"look-{uuid.uuid4().hex[:8]}"
    start = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=2)
    sm.create_secret(Name=name, SecretString="v")
    for _ in range(5):
        sm.get_secret_value(SecretId=name)
    by_name = [{"AttributeKey": "ResourceName", "AttributeValue": name}]
    wait_until(lambda: len(_lookup_all(ct, LookupAttributes=by_name)) == 6, what="six records")

    events = _lookup_all(ct, LookupAttributes=by_name)
    assert [e["EventName"] for e in events] == ["GetSecretValue"] * 5 + ["CreateSecret"]
    one = events[2]
    assert _lookup_all(ct, LookupAttributes=[
        {"AttributeKey": "EventId", "AttributeValue": one["EventId"]}]) == [one]
    reads = _lookup_all(ct, StartTime=start, LookupAttributes=[
        {"AttributeKey": "ReadOnly", "AttributeValue": "false"}])
    assert any(e["EventName"] == "CreateSecret" for e in reads)
    assert all(e["ReadOnly"] == "false" for e in reads)
    assert all(e["EventName"] == "CreateSecret" for e in _lookup_all(ct, StartTime=start,
               LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateSecret"}]))
    assert _lookup_all(ct, StartTime=start, LookupAttributes=[
        {"AttributeKey": "EventSource", "AttributeValue": "secretsmanager.amazonaws.com"}])
    assert _lookup_all(ct, StartTime=start, LookupAttributes=[
        {"AttributeKey": "ResourceType", "AttributeValue": "AWS::SecretsManager::Secret"}])
    # Until principals exist, no record names a user.
    assert _lookup_all(ct, StartTime=start, LookupAttributes=[
        {"AttributeKey": "Username", "AttributeValue": "alice"}]) == []

    # Pages of two, by hand: each event once, in order, with a token until the end.
    seen, token = [], None
    while True:
        kw = {"LookupAttributes": by_name, "MaxResults": 2}
        if token:
            kw["NextToken"] = token
        page = ct.lookup_events(**kw)
        seen.extend(page["Events"])
        token = page.get("NextToken")
        if not token:
            break
        assert len(page["Events"]) == 2
    assert seen == events

    # A time window: EndTime before the records finds none of them.
    assert _lookup_all(ct, LookupAttributes=by_name, EndTime=start) == []
    assert ct.lookup_events(EventCategory="insight")["Events"] == []

    raw_ct = _ct(server.endpoint, validate=False)
    cases = [
        (dict(LookupAttributes=by_name * 2), "InvalidLookupAttributesException"),
        (dict(LookupAttributes=[{"AttributeKey": "Color", "AttributeValue": "x"}]),
         "InvalidLookupAttributesException"),
        (dict(MaxResults=51), "InvalidMaxResultsException"),
        (dict(MaxResults=0), "InvalidMaxResultsException"),
        (dict(StartTime=start, EndTime=start - dt.timedelta(hours=1)), "InvalidTimeRangeException"),
        (dict(NextToken="junk"), "InvalidNextTokenException"),
        (dict(EventCategory="other"), "InvalidEventCategoryException"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ClientError) as e:
            raw_ct.lookup_events(**kwargs)
        assert e.value.response["Error"]["Code"] == code, kwargs
        assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    token = ct.lookup_events(LookupAttributes=by_name, MaxResults=1)["NextToken"]
    with pytest.raises(ClientError) as e:
        ct.lookup_events(MaxResults=1, NextToken=token)
    assert e.value.response["Error"]["Code"] == "InvalidNextTokenException", \
        "a token is bound to the parameters it was issued for"
    # Signed for Secrets Manager instead of CloudTrail: refused like AWS refuses it.
    r = RawClient(server.endpoint).call(
        "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents", {})
    assert r.error_type == "InvalidSignatureException"


def test_aws_cli_cloudtrail_lookup_events(server, sm, tmp_path):
    name = f"cli-{uuid.uuid4().hex[:8]}"
    sm.create_secret(Name=name, SecretString="v")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_CONFIG_FILE=str(tmp_path / "c"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "k"),
               AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="")
    cmd = [_aws_executable(), "cloudtrail", "lookup-events", "--endpoint-url", server.endpoint,
           "--region", REGION, "--output", "json", "--lookup-attributes",
           f"AttributeKey=ResourceName,AttributeValue={name}"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    events = json.loads(out.stdout)["Events"]
    assert [e["EventName"] for e in events] == ["CreateSecret"]
    assert json.loads(events[0]["CloudTrailEvent"])["requestParameters"]["name"] == name


# ----- the admin CLI on a production-mode server -----

def _config(tmp_path: Path, text: str) -> str:
    p = tmp_path / "arca.toml"
    p.write_text(text)
    return str(p)


def _audit(env, *args) -> list[dict]:
    return [json.loads(line) for line in _arca("audit", *args, env=env).splitlines() if line]


def test_arca_audit_filters_follows_and_holds_no_plaintext(prod_env, tmp_path):
    key_id, secret = _pair(_arca("access-key", "create", env=prod_env))
    srv = Server(prod_env)
    follower = subprocess.Popen([_arca_bin(), "audit", "--follow", "--event", "TagResource"],
                                env=prod_env, stdout=subprocess.PIPE, text=True)
    canary = f"plaintext-canary-{uuid.uuid4().hex}"
    try:
        sm = srv.client(key_id, secret)
        sm.create_secret(Name="db/main", SecretString=canary)
        sm.create_secret(Name="db/main-old", SecretString=canary + "-2")
        sm.get_secret_value(SecretId="db/main")
        with pytest.raises(ClientError):
            sm.get_secret_value(SecretId="db/nope")
        sm.tag_resource(SecretId="db/main", Tags=[{"Key": "a", "Value": "b"}])
        line = follower.stdout.readline()
        assert json.loads(line)["eventName"] == "TagResource", "--follow prints new records"
    finally:
        follower.kill()
        srv.stop()

    # In the chain's order, which is commit order: a read's record is appended with its
    # batch, so it may follow a later write's.
    mine = _audit(prod_env, "--secret", "db/main")
    assert sorted(r["eventName"] for r in mine) == ["CreateSecret", "GetSecretValue",
                                                     "TagResource"], \
        "by name: only that secret's records, not db/main-old's"
    arn = [r for r in mine if r["eventName"] == "CreateSecret"][0]["responseElements"]["arn"]
    assert sorted(r["eventName"] for r in _audit(prod_env, "--secret", arn)) == \
        ["CreateSecret", "GetSecretValue", "TagResource"]
    failed = _audit(prod_env, "--outcome", "failure")
    assert [r["errorCode"] for r in failed] == ["ResourceNotFoundException"]
    assert len(_audit(prod_env, "--outcome", "success")) == 4
    assert len(_audit(prod_env, "--access-key", key_id)) == 5
    assert _audit(prod_env, "--access-key", "AKIAOTHER") == []
    assert len(_audit(prod_env, "--event", "CreateSecret")) == 2
    assert _audit(prod_env, "--since", "2999-01-01") == []
    assert len(_audit(prod_env, "--until", "2999-01-01T00:00:00Z")) == 5
    assert len(_audit(prod_env, "--limit", "2")) == 2
    assert "intact: 5 records in" in _arca("audit", "verify", env=prod_env)

    # No plaintext anywhere in the database files, audit trail included.
    for f in Path(prod_env["ARCA_DATABASE"]).parent.glob("arca.db*"):
        assert canary.encode() not in f.read_bytes(), f"plaintext in {f.name}"


def _arca_bin() -> str:
    from conftest import arca_binary
    return str(arca_binary())


def _verify(env) -> subprocess.CompletedProcess:
    return subprocess.run([_arca_bin(), "audit", "verify"], env=env, capture_output=True,
                          text=True, timeout=60)


def test_audit_verify_detects_each_kind_of_tampering(prod_env, tmp_path):
    key_id, secret = _pair(_arca("access-key", "create", env=prod_env))
    srv = Server(prod_env)
    try:
        sm = srv.client(key_id, secret)
        sm.create_secret(Name="t", SecretString="v")
        for _ in range(4):
            sm.get_secret_value(SecretId="t")
        sm.put_secret_value(SecretId="t", SecretString="w")
    finally:
        srv.stop()
    ok = _verify(prod_env)
    assert ok.returncode == 0 and "intact: 6 records in" in ok.stdout, ok.stdout + ok.stderr

    db = Path(prod_env["ARCA_DATABASE"])
    c = sqlite3.connect(db)
    rows = c.execute("SELECT seq, batch_size FROM audit ORDER BY seq").fetchall()
    c.close()
    assert len(rows) >= 3, rows
    batch = [seq for seq, n in rows if n > 0][0]
    single = [seq for seq, n in rows if n == 0 and seq > 1][0]
    last = rows[-1][0]

    def tampered(sql: list[str]) -> str:
        copy = tmp_path / f"t-{uuid.uuid4().hex[:6]}.db"
        shutil.copy(db, copy)
        for suffix in ("-wal", "-shm"):
            if Path(str(db) + suffix).exists():
                shutil.copy(str(db) + suffix, str(copy) + suffix)
        c = sqlite3.connect(copy)
        for s in sql:
            c.execute(s)
        c.commit()
        c.close()
        out = _verify(dict(prod_env, ARCA_DATABASE=str(copy)))
        assert out.returncode != 0, f"tampering not detected: {sql}\n{out.stdout}"
        return out.stdout

    # One read's record edited inside a batch.
    edited = tampered([f"UPDATE audit SET detail = replace(detail, 'GetSecretValue', "
                       f"'GetSecretValuf') WHERE seq = {batch}"])
    assert f"entry {batch} was altered" in edited
    col = tampered([f"UPDATE audit SET access_key_id = 'AKIAFORGED' WHERE seq = {single}"])
    assert f"entry {single} was altered" in col
    deleted = tampered(["DELETE FROM audit WHERE seq = 2"])
    assert "entry 2 is missing" in deleted
    # Reordered: two entries swap places (their seqs exchanged).
    swapped = tampered([
        "UPDATE audit SET seq = -1 WHERE seq = 2",
        "UPDATE audit SET seq = 2 WHERE seq = 3",
        "UPDATE audit SET seq = 3 WHERE seq = -1",
    ])
    assert "entry 2 does not follow entry 1" in swapped
    forged = tampered([f"UPDATE audit SET hash = zeroblob(32) WHERE seq = {last}"])
    assert f"entry {last} was altered" in forged

    # The tail cut off: a gap as soon as anything is appended after it.
    c = sqlite3.connect(db)
    c.execute(f"DELETE FROM audit WHERE seq = {last}")
    c.commit()
    c.close()
    srv = Server(prod_env)
    try:
        srv.client(key_id, secret).describe_secret(SecretId="t")
    finally:
        srv.stop()
    cut = _verify(prod_env)
    assert cut.returncode != 0 and f"entry {last} is missing" in cut.stdout, cut.stdout


def test_a_full_queue_drops_reads_only_and_the_trail_counts_them(prod_env, tmp_path):
    env = dict(prod_env, ARCA_CONFIG=_config(tmp_path, "[audit]\nqueue = 1\n"))
    key_id, secret = _pair(_arca("access-key", "create", env=env))
    srv = Server(env)
    reads, writes = 40 * 25, 40
    try:
        sm = srv.client(key_id, secret)
        sm.create_secret(Name="hot", SecretString="v")
        errors = []

        def reader():
            c = srv.client(key_id, secret)
            try:
                for _ in range(25):
                    c.get_secret_value(SecretId="hot")
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        def writer(i):
            c = srv.client(key_id, secret)
            try:
                c.tag_resource(SecretId="hot", Tags=[{"Key": f"k{i}", "Value": "v"}])
                with pytest.raises(ClientError):
                    c.tag_resource(SecretId="missing", Tags=[{"Key": "k", "Value": "v"}])
            except Exception as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=reader) for _ in range(40)]
        threads += [threading.Thread(target=writer, args=(i,)) for i in range(writes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors[:3]
    finally:
        srv.stop()
    recs = _audit(env, "--limit", "100000")
    gets = [r for r in recs if r["eventName"] == "GetSecretValue"]
    tags = [r for r in recs if r["eventName"] == "TagResource"]
    notes = [r for r in recs if r["eventName"] == "AuditRecordsDropped"]
    dropped = sum(n["additionalEventData"]["droppedRecords"] for n in notes)
    assert len(tags) == 2 * writes, "no write's record is dropped, refused ones included"
    assert dropped > 0, "a queue of one under 40 readers drops some reads"
    assert len(gets) + dropped == reads, (len(gets), dropped)
    assert "intact" in _arca("audit", "verify", env=env)
