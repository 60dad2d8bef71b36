"""Versions and staging labels: PutSecretValue, UpdateSecretVersionStage,
ListSecretVersionIds (deprecated versions, pagination)."""

from helpers import VALIDATION_CODES, expect_error, token


def stages(sm, secret_id):
    return sm.describe_secret(SecretId=secret_id)["VersionIdsToStages"]


def test_put_moves_current_and_previous(sm):
    v1 = sm.create_secret(Name="s", SecretString="1")["VersionId"]
    out = sm.put_secret_value(SecretId="s", SecretString="2")
    v2 = out["VersionId"]
    assert out["VersionStages"] == ["AWSCURRENT"]
    assert out["Name"] == "s"
    assert stages(sm, "s") == {v1: ["AWSPREVIOUS"], v2: ["AWSCURRENT"]}
    v3 = sm.put_secret_value(SecretId="s", SecretString="3")["VersionId"]
    # v1 lost its last label: it is deprecated and no longer listed.
    assert stages(sm, "s") == {v2: ["AWSPREVIOUS"], v3: ["AWSCURRENT"]}
    assert sm.get_secret_value(SecretId="s")["SecretString"] == "3"
    assert sm.get_secret_value(SecretId="s", VersionStage="AWSPREVIOUS")["SecretString"] == "2"


def test_exactly_one_current(sm):
    sm.create_secret(Name="one", SecretString="0")
    for i in range(5):
        sm.put_secret_value(SecretId="one", SecretString=str(i + 1))
        labels = [lbl for ls in stages(sm, "one").values() for lbl in ls]
        assert labels.count("AWSCURRENT") == 1
        assert labels.count("AWSPREVIOUS") == 1


def test_put_with_version_stages_moves_only_those_labels(sm):
    v1 = sm.create_secret(Name="p", SecretString="v1")["VersionId"]
    out = sm.put_secret_value(SecretId="p", SecretString="pending", VersionStages=["AWSPENDING"])
    v2 = out["VersionId"]
    assert out["VersionStages"] == ["AWSPENDING"]
    assert stages(sm, "p") == {v1: ["AWSCURRENT"], v2: ["AWSPENDING"]}
    assert sm.get_secret_value(SecretId="p")["SecretString"] == "v1"
    assert sm.get_secret_value(SecretId="p", VersionStage="AWSPENDING")["SecretString"] == "pending"
    # A label already on another version moves; AWSPREVIOUS does not (only AWSCURRENT moves it).
    v3 = sm.put_secret_value(SecretId="p", SecretString="p2", VersionStages=["AWSPENDING", "CUSTOM"])["VersionId"]
    got = stages(sm, "p")
    assert set(got) == {v1, v3}
    assert got[v1] == ["AWSCURRENT"]
    assert sorted(got[v3]) == ["AWSPENDING", "CUSTOM"]


def test_put_with_awscurrent_stage_moves_previous(sm):
    v1 = sm.create_secret(Name="c", SecretString="v1")["VersionId"]
    v2 = sm.put_secret_value(SecretId="c", SecretString="v2", VersionStages=["AWSCURRENT", "PUT0"])["VersionId"]
    got = stages(sm, "c")
    assert got[v1] == ["AWSPREVIOUS"]
    assert sorted(got[v2]) == ["AWSCURRENT", "PUT0"]


def test_update_version_stage_moves_current(sm):
    v1 = sm.create_secret(Name="u", SecretString="S1")["VersionId"]
    v2 = sm.put_secret_value(SecretId="u", SecretString="S2", VersionStages=["AWSPENDING"])["VersionId"]
    out = sm.update_secret_version_stage(SecretId="u", VersionStage="AWSCURRENT",
                                         MoveToVersionId=v2, RemoveFromVersionId=v1)
    assert out["Name"] == "u"
    got = stages(sm, "u")
    assert got[v1] == ["AWSPREVIOUS"]
    assert sorted(got[v2]) == ["AWSCURRENT", "AWSPENDING"]
    assert sm.get_secret_value(SecretId="u")["SecretString"] == "S2"


def test_update_version_stage_requires_remove_from(sm):
    v1 = sm.create_secret(Name="r", SecretString="1")["VersionId"]
    v2 = sm.put_secret_value(SecretId="r", SecretString="2", VersionStages=["X"])["VersionId"]
    # Label attached elsewhere and RemoveFromVersionId missing, or not matching: fails (documented).
    expect_error("InvalidParameterException", sm.update_secret_version_stage,
                 SecretId="r", VersionStage="AWSCURRENT", MoveToVersionId=v2)
    expect_error("InvalidParameterException", sm.update_secret_version_stage,
                 SecretId="r", VersionStage="AWSCURRENT", MoveToVersionId=v2, RemoveFromVersionId=v2)
    assert stages(sm, "r") == {v1: ["AWSCURRENT"], v2: ["X"]}


def test_update_version_stage_custom_label_and_removal(sm):
    v1 = sm.create_secret(Name="l", SecretString="1")["VersionId"]
    v2 = sm.put_secret_value(SecretId="l", SecretString="2", VersionStages=["BLUE"])["VersionId"]
    # Attach a new label to v1: added to the existing labels.
    sm.update_secret_version_stage(SecretId="l", VersionStage="GREEN", MoveToVersionId=v1)
    assert sorted(stages(sm, "l")[v1]) == ["AWSCURRENT", "GREEN"]
    # Move a custom label: no AWSPREVIOUS side effect.
    sm.update_secret_version_stage(SecretId="l", VersionStage="BLUE", MoveToVersionId=v1, RemoveFromVersionId=v2)
    got = stages(sm, "l")
    assert sorted(got[v1]) == ["AWSCURRENT", "BLUE", "GREEN"]
    assert v2 not in got  # v2 has no labels left: deprecated
    # Remove a label: RemoveFromVersionId without MoveToVersionId.
    sm.update_secret_version_stage(SecretId="l", VersionStage="GREEN", RemoveFromVersionId=v1)
    assert sorted(stages(sm, "l")[v1]) == ["AWSCURRENT", "BLUE"]


def test_deprecated_versions_hidden_unless_include_deprecated(sm):
    v1 = sm.create_secret(Name="d", SecretString="1")["VersionId"]
    v2 = sm.put_secret_value(SecretId="d", SecretString="2")["VersionId"]
    v3 = sm.put_secret_value(SecretId="d", SecretString="3")["VersionId"]
    listed = sm.list_secret_version_ids(SecretId="d")
    assert listed["Name"] == "d"
    assert {v["VersionId"]: v["VersionStages"] for v in listed["Versions"]} == {
        v2: ["AWSPREVIOUS"], v3: ["AWSCURRENT"],
    }
    for v in listed["Versions"]:
        assert "CreatedDate" in v
    all_versions = sm.list_secret_version_ids(SecretId="d", IncludeDeprecated=True)["Versions"]
    by_id = {v["VersionId"]: v for v in all_versions}
    assert set(by_id) == {v1, v2, v3}
    assert by_id[v1].get("VersionStages", []) == []
    # A deprecated version is still readable by VersionId until AWS removes it.
    assert sm.get_secret_value(SecretId="d", VersionId=v1)["SecretString"] == "1"


def test_list_secret_version_ids_pagination(sm):
    sm.create_secret(Name="pg", SecretString="0")
    for i in range(4):
        sm.put_secret_value(SecretId="pg", SecretString=str(i + 1), VersionStages=[f"L{i}"])
    seen, next_token, pages = [], None, 0
    while True:
        kwargs = {"SecretId": "pg", "MaxResults": 2}
        if next_token:
            kwargs["NextToken"] = next_token
        page = sm.list_secret_version_ids(**kwargs)
        assert len(page["Versions"]) <= 2
        seen += [v["VersionId"] for v in page["Versions"]]
        pages += 1
        next_token = page.get("NextToken")
        if not next_token:
            break
    assert len(seen) == 5 and len(set(seen)) == 5
    assert pages >= 3


def test_twenty_labels_per_version(sm, sm_raw):
    v1 = sm.create_secret(Name="many", SecretString="x")["VersionId"]
    for i in range(19):
        sm.update_secret_version_stage(SecretId="many", VersionStage=f"L{i:02d}", MoveToVersionId=v1)
    assert len(stages(sm, "many")[v1]) == 20
    # The quota is 20 staging labels per version; AWS's docs name no error code for the
    # 21st label. LimitExceededException ("would exceed one of the Secrets Manager quotas")
    # is the documented meaning; accept InvalidParameterException as well.
    expect_error(("LimitExceededException", "InvalidParameterException"), sm.update_secret_version_stage,
                 SecretId="many", VersionStage="L19", MoveToVersionId=v1)
    assert len(stages(sm, "many")[v1]) == 20
    # PutSecretValue's VersionStages list has max=20 in the model.
    expect_error(VALIDATION_CODES + ("LimitExceededException",), sm_raw.put_secret_value,
                 SecretId="many", SecretString="y", VersionStages=[f"M{i}" for i in range(21)])


def test_update_version_stage_unknown_version(sm):
    sm.create_secret(Name="uv", SecretString="x")
    # Moving a label to a version that does not exist. Not documented which code;
    # InvalidParameterException or ResourceNotFoundException are both plausible.
    expect_error(("InvalidParameterException", "ResourceNotFoundException"), sm.update_secret_version_stage,
                 SecretId="uv", VersionStage="X", MoveToVersionId=token())


def test_version_quota_prunes_old_deprecated_versions_only(sm, server):
    # AWS keeps at most 100 versions: deprecated (unlabelled) versions beyond that are
    # removed, oldest first, but never within 24 hours of their creation; a write that
    # would exceed the quota with nothing removable fails with LimitExceededException.
    first = sm.create_secret(Name="many-versions", SecretString="v0")["VersionId"]
    for i in range(1, 100):
        sm.put_secret_value(SecretId="many-versions", SecretString=f"v{i}")
    listed = sm.list_secret_version_ids(SecretId="many-versions", IncludeDeprecated=True, MaxResults=100)
    assert len(listed["Versions"]) == 100 and "NextToken" not in listed
    expect_error(("LimitExceededException",), sm.put_secret_value, SecretId="many-versions",
                 SecretString="too-soon")
    assert sm.get_secret_value(SecretId="many-versions")["SecretString"] == "v99"

    server.advance_clock(25 * 3600)
    sm.put_secret_value(SecretId="many-versions", SecretString="v100")
    ids = [v["VersionId"] for v in sm.list_secret_version_ids(
        SecretId="many-versions", IncludeDeprecated=True, MaxResults=100)["Versions"]]
    assert len(ids) == 100
    assert first not in ids  # the oldest deprecated version went
    stages = sm.describe_secret(SecretId="many-versions")["VersionIdsToStages"]
    assert sorted(s for v in stages.values() for s in v) == ["AWSCURRENT", "AWSPREVIOUS"]
    assert sm.get_secret_value(SecretId="many-versions", VersionStage="AWSPREVIOUS")["SecretString"] == "v99"
