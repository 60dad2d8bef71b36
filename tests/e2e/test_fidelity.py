"""Fidelity to AWS: the error table of tests/fidelity/errors.json sent through boto3 (and,
for requests no SDK sends, a raw SigV4 client), checking __type, HTTP status, the Message
text and the modelled Message member as botocore fills it; then the optional members of
DescribeSecret, ListSecrets and ListSecretVersionIds (absent, empty or present as AWS
shows them) and the staging-label walk of the documentation. The Rust SDK runs the same
error table in crates/arca/tests/fidelity.rs."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from helpers import token

TABLE = json.loads((Path(__file__).resolve().parents[1] / "fidelity" / "errors.json").read_text())
CASES = TABLE["cases"]


def snake(op: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower()


def expand(value, saved: dict):
    """${name} -> a saved response member; ${N c} -> the character c repeated N times."""
    if isinstance(value, str):
        m = re.fullmatch(r"\$\{(\d+) (.)\}", value)
        if m:
            return m.group(2) * int(m.group(1))
        return re.sub(r"\$\{(\w+)\}", lambda m: saved[m.group(1)], value)
    if isinstance(value, list):
        return [expand(v, saved) for v in value]
    if isinstance(value, dict):
        return {k: expand(v, saved) for k, v in value.items()}
    return value


def boto3_params(params: dict) -> dict:
    out = dict(params)
    if "SecretBinary" in out:
        out["SecretBinary"] = base64.b64decode(out["SecretBinary"])
    return out


def run_setup(client, case, saved: dict):
    for step in case.get("setup", []):
        for _ in range(step.get("repeat", 1)):
            resp = getattr(client, snake(step["op"]))(**boto3_params(expand(step["params"], saved)))
        for name, member in step.get("save", {}).items():
            saved[name] = resp[member]


def clients_of(case) -> list[str]:
    return case.get("clients", ["boto3", "rust"])


BOTO3_CASES = [c for c in CASES if "boto3" in clients_of(c)]
RAW_CASES = [c for c in CASES if "raw" in clients_of(c)]


def test_every_case_names_its_source():
    for c in CASES:
        assert c.get("source"), c["name"]
        assert c["expect"]["type"] and "message" in c["expect"], c["name"]
    assert len({c["name"] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", BOTO3_CASES, ids=[c["name"] for c in BOTO3_CASES])
def test_error_through_boto3(sm_raw, case):
    saved: dict = {}
    run_setup(sm_raw, case, saved)
    call = case["call"]
    with pytest.raises(ClientError) as info:
        getattr(sm_raw, snake(call["op"]))(**boto3_params(expand(call["params"], saved)))
    r = info.value.response
    want = case["expect"]
    message = expand(want["message"], saved)
    assert r["Error"]["Code"] == want["type"], r
    assert r["ResponseMetadata"]["HTTPStatusCode"] == want.get("status", 400), r["ResponseMetadata"]
    assert r["Error"]["Message"] == message
    if want["modeled"]:
        # botocore fills the exception shape's Message member from the body's "Message".
        assert r.get("Message") == message, r
        assert type(info.value).__name__ == want["type"]


@pytest.mark.parametrize("case", RAW_CASES, ids=[c["name"] for c in RAW_CASES])
def test_error_on_the_wire(sm, raw, case):
    saved: dict = {}
    run_setup(sm, case, saved)
    call = case["call"]
    resp = raw.call(call["op"], expand(call["params"], saved))
    want = case["expect"]
    assert resp.status == want.get("status", 400), resp.body
    assert resp.json == {"__type": want["type"], "Message": expand(want["message"], saved)}
    headers = {k.lower(): v for k, v in resp.headers.items()}
    assert headers.get("x-amzn-errortype") == want["type"]


def test_error_bodies_carry_message_with_a_capital_m(raw):
    resp = raw.call("DescribeSecret", {"SecretId": "nope"})
    assert set(resp.json) == {"__type", "Message"}, resp.json


# ---------- optional members: absent, empty, present ----------

ABSENT_ON_A_PLAIN_SECRET = ["Description", "KmsKeyId", "RotationEnabled", "RotationLambdaARN",
                            "RotationRules", "LastRotatedDate", "NextRotationDate",
                            "LastAccessedDate", "DeletedDate", "Tags", "OwningService",
                            "PrimaryRegion", "ReplicationStatus", "Type"]


def listed(sm, name):
    return [e for e in sm.list_secrets()["SecretList"] if e["Name"] == name][0]


def test_a_plain_secret_shows_only_what_it_has(sm):
    sm.create_secret(Name="plain", SecretString="v")
    d = sm.describe_secret(SecretId="plain")
    for m in ABSENT_ON_A_PLAIN_SECRET:
        assert m not in d, (m, d)
    for m in ["ARN", "Name", "CreatedDate", "LastChangedDate", "VersionIdsToStages"]:
        assert m in d, (m, d)
    entry = listed(sm, "plain")
    for m in ABSENT_ON_A_PLAIN_SECRET + ["VersionIdsToStages"]:
        assert m not in entry, (m, entry)
    assert "SecretVersionsToStages" in entry


def test_an_empty_description_is_no_description(sm):
    sm.create_secret(Name="d0", SecretString="v", Description="")
    assert "Description" not in sm.describe_secret(SecretId="d0")
    assert "Description" not in listed(sm, "d0")
    sm.create_secret(Name="d1", SecretString="v", Description="text")
    assert sm.describe_secret(SecretId="d1")["Description"] == "text"
    sm.update_secret(SecretId="d1", Description="")
    assert "Description" not in sm.describe_secret(SecretId="d1")


def test_tags_absent_until_tagged_and_empty_after_removing_all(sm):
    sm.create_secret(Name="t", SecretString="v")
    assert "Tags" not in sm.describe_secret(SecretId="t")
    sm.tag_resource(SecretId="t", Tags=[{"Key": "a", "Value": "1"}])
    assert sm.describe_secret(SecretId="t")["Tags"] == [{"Key": "a", "Value": "1"}]
    sm.untag_resource(SecretId="t", TagKeys=["a"])
    assert sm.describe_secret(SecretId="t")["Tags"] == []
    assert listed(sm, "t")["Tags"] == []
    sm.create_secret(Name="t2", SecretString="v", Tags=[{"Key": "k", "Value": ""}])
    sm.untag_resource(SecretId="t2", TagKeys=["k"])
    assert sm.describe_secret(SecretId="t2")["Tags"] == []


def test_a_secret_without_a_value_has_no_versions_member(sm):
    r = sm.create_secret(Name="novalue")
    assert "VersionId" not in r
    d = sm.describe_secret(SecretId="novalue")
    assert "VersionIdsToStages" not in d and "LastChangedDate" in d


def test_version_entries(sm):
    sm.create_secret(Name="v", SecretString="1")
    first = sm.list_secret_version_ids(SecretId="v")["Versions"][0]
    assert first["KmsKeyIds"] == ["DefaultEncryptionKey"]
    assert "LastAccessedDate" not in first
    sm.put_secret_value(SecretId="v", SecretString="2")
    sm.put_secret_value(SecretId="v", SecretString="3")
    plain = sm.list_secret_version_ids(SecretId="v")["Versions"]
    assert len(plain) == 2
    every = sm.list_secret_version_ids(SecretId="v", IncludeDeprecated=True)["Versions"]
    deprecated = [e for e in every if e["VersionId"] == first["VersionId"]][0]
    # A deprecated version has no VersionStages member at all (recorded).
    assert "VersionStages" not in deprecated
    sm.get_secret_value(SecretId="v")
    current = [e for e in sm.list_secret_version_ids(SecretId="v")["Versions"]
               if "AWSCURRENT" in e["VersionStages"]][0]
    assert "LastAccessedDate" in current
    assert "NextToken" not in sm.list_secret_version_ids(SecretId="v")


def test_deleted_secret_shows_its_deleted_date(sm):
    sm.create_secret(Name="del", SecretString="v")
    sm.delete_secret(SecretId="del", RecoveryWindowInDays=7)
    assert "DeletedDate" in sm.describe_secret(SecretId="del")


# ---------- staging labels: the documented walk ----------

def stages(sm, name):
    return {v["VersionId"]: sorted(v.get("VersionStages", []))
            for v in sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]}


def test_label_walk_of_the_documentation(sm):
    # Recorded: LocalStack test_update_secret_version_stages_current_pending.
    v0 = sm.create_secret(Name="walk", SecretString="s0")["VersionId"]
    v1 = sm.put_secret_value(SecretId="walk", SecretString="s1", VersionStages=["AWSPENDING"],
                             ClientRequestToken=token())["VersionId"]
    assert stages(sm, "walk") == {v0: ["AWSCURRENT"], v1: ["AWSPENDING"]}
    sm.update_secret_version_stage(SecretId="walk", VersionStage="AWSCURRENT",
                                   MoveToVersionId=v1, RemoveFromVersionId=v0)
    # Moving AWSCURRENT onto the pending version keeps AWSPENDING there.
    assert stages(sm, "walk") == {v0: ["AWSPREVIOUS"], v1: ["AWSCURRENT", "AWSPENDING"]}
    v2 = sm.put_secret_value(SecretId="walk", SecretString="s2")["VersionId"]
    # A plain PutSecretValue: the old current keeps only AWSPREVIOUS; v0 is deprecated.
    assert stages(sm, "walk") == {v0: [], v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    assert sm.describe_secret(SecretId="walk")["VersionIdsToStages"] == {
        v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}


def test_custom_labels_stay_when_current_moves(sm):
    # Recorded: LocalStack test_update_secret_version_stages_current_pending_custom_stages_1.
    v1 = sm.create_secret(Name="c", SecretString="s1")["VersionId"]
    v2 = sm.put_secret_value(SecretId="c", SecretString="s2",
                             VersionStages=["AWSPENDING", "AWSSOMETHING", "PUT1"])["VersionId"]
    sm.update_secret_version_stage(SecretId="c", VersionStage="AWSCURRENT",
                                   MoveToVersionId=v2, RemoveFromVersionId=v1)
    assert stages(sm, "c") == {v1: ["AWSPREVIOUS"],
                               v2: ["AWSCURRENT", "AWSPENDING", "AWSSOMETHING", "PUT1"]}
    v3 = sm.put_secret_value(SecretId="c", SecretString="s3",
                             VersionStages=["AWSPENDING", "PUT2"])["VersionId"]
    assert stages(sm, "c")[v2] == ["AWSCURRENT", "AWSSOMETHING", "PUT1"]
    sm.update_secret_version_stage(SecretId="c", VersionStage="AWSCURRENT",
                                   MoveToVersionId=v3, RemoveFromVersionId=v2)
    assert stages(sm, "c") == {v1: [], v2: ["AWSPREVIOUS", "AWSSOMETHING", "PUT1"],
                               v3: ["AWSCURRENT", "AWSPENDING", "PUT2"]}
