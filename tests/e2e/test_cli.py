"""The aws CLI (`aws secretsmanager ...` subprocesses) against Arca, unchanged."""

import base64


def test_cli_lifecycle(aws, tmp_path):
    created = aws("create-secret", "--name", "cli/db", "--secret-string", '{"user":"u","pw":"p"}',
                  "--description", "from the CLI", "--tags", "Key=team,Value=core").ok()
    assert created["Name"] == "cli/db"
    assert created["ARN"].startswith("arn:aws:secretsmanager:us-east-1:123456789012:secret:cli/db-")
    v1 = created["VersionId"]

    got = aws("get-secret-value", "--secret-id", "cli/db").ok()
    assert got["SecretString"] == '{"user":"u","pw":"p"}'
    assert got["VersionStages"] == ["AWSCURRENT"]

    put = aws("put-secret-value", "--secret-id", created["ARN"], "--secret-string", "v2").ok()
    assert put["VersionStages"] == ["AWSCURRENT"]
    assert aws("get-secret-value", "--secret-id", "cli/db").ok()["SecretString"] == "v2"
    prev = aws("get-secret-value", "--secret-id", "cli/db", "--version-stage", "AWSPREVIOUS").ok()
    assert prev["VersionId"] == v1

    desc = aws("describe-secret", "--secret-id", "cli/db").ok()
    assert desc["Description"] == "from the CLI"
    assert desc["Tags"] == [{"Key": "team", "Value": "core"}]
    assert desc["VersionIdsToStages"] == {v1: ["AWSPREVIOUS"], put["VersionId"]: ["AWSCURRENT"]}

    listed = aws("list-secrets").ok()
    assert [s["Name"] for s in listed["SecretList"]] == ["cli/db"]
    filtered = aws("list-secrets", "--filters", "Key=name,Values=nomatch").ok()
    assert filtered["SecretList"] == []

    deleted = aws("delete-secret", "--secret-id", "cli/db", "--recovery-window-in-days", "7").ok()
    assert deleted["Name"] == "cli/db" and "DeletionDate" in deleted
    assert aws("list-secrets").ok()["SecretList"] == []
    assert len(aws("list-secrets", "--include-planned-deletion").ok()["SecretList"]) == 1

    failed = aws("get-secret-value", "--secret-id", "cli/db")
    assert failed.returncode != 0
    assert "InvalidRequestException" in failed.stderr

    restored = aws("restore-secret", "--secret-id", "cli/db").ok()
    assert restored["Name"] == "cli/db"
    assert aws("get-secret-value", "--secret-id", "cli/db").ok()["SecretString"] == "v2"


def test_cli_binary_secret(aws, tmp_path):
    blob = bytes(range(256))
    path = tmp_path / "blob.bin"
    path.write_bytes(blob)
    aws("create-secret", "--name", "cli/bin", "--secret-binary", f"fileb://{path}").ok()
    got = aws("get-secret-value", "--secret-id", "cli/bin").ok()
    assert base64.b64decode(got["SecretBinary"]) == blob


def test_cli_force_delete(aws):
    aws("create-secret", "--name", "cli/gone", "--secret-string", "x").ok()
    aws("delete-secret", "--secret-id", "cli/gone", "--force-delete-without-recovery").ok()
    # Force-deleting something that does not exist succeeds (documented).
    aws("delete-secret", "--secret-id", "never-there", "--force-delete-without-recovery").ok()


def test_cli_error_reporting(aws):
    failed = aws("get-secret-value", "--secret-id", "does-not-exist")
    assert failed.returncode != 0
    assert "ResourceNotFoundException" in failed.stderr
    bad = aws("delete-secret", "--secret-id", "x", "--recovery-window-in-days", "3")
    assert bad.returncode != 0
    assert "InvalidParameterException" in bad.stderr or "ResourceNotFoundException" in bad.stderr


def test_cli_get_random_password(aws):
    out = aws("get-random-password", "--password-length", "20", "--exclude-punctuation").ok()
    p = out["RandomPassword"]
    assert len(p) == 20 and p.isalnum()
    assert len(aws("get-random-password").ok()["RandomPassword"]) == 32


def test_cli_other_region(aws):
    aws("create-secret", "--name", "west", "--secret-string", "w", region="eu-west-1").ok()
    assert aws("list-secrets").ok()["SecretList"] == []
    listed = aws("list-secrets", region="eu-west-1").ok()["SecretList"]
    assert [s["Name"] for s in listed] == ["west"]
    assert ":eu-west-1:" in listed[0]["ARN"]
