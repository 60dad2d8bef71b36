"""The admin CLI and a production-mode server (no --dev): root key file, access keys and
encryption keys made with `arca`, persistence across restarts, keys added while the
server runs, and a wrong root key refused at start-up."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
import time
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import _drain, arca_binary

LISTEN_RE = re.compile(r"arca: listening on (\S+:\d+)")


def _binary() -> str:
    return str(arca_binary())


def _arca(*args: str, env: dict) -> str:
    out = subprocess.run([_binary(), *args], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"arca {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}"
    return out.stdout


class Server:
    def __init__(self, env: dict):
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [_binary(), "server", "--listen", "127.0.0.1:0"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        lines: "queue.Queue[str | None]" = queue.Queue()
        threading.Thread(target=_drain, args=(self.proc.stdout, self.log, lines), daemon=True).start()
        deadline = time.monotonic() + 20
        self.endpoint = None
        while self.endpoint is None:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise RuntimeError("arca exited:\n" + "\n".join(self.log))
            m = LISTEN_RE.search(line)
            if m:
                self.endpoint = f"http://{m.group(1)}"

    def client(self, key_id: str, secret: str, region: str = "us-east-1"):
        return boto3.session.Session(
            aws_access_key_id=key_id, aws_secret_access_key=secret, region_name=region
        ).client("secretsmanager", endpoint_url=self.endpoint,
                 config=Config(retries={"max_attempts": 1}))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _pair(stdout: str) -> tuple[str, str]:
    kv = dict(line.split("=", 1) for line in stdout.splitlines() if "=" in line)
    return kv["AWS_ACCESS_KEY_ID"], kv["AWS_SECRET_ACCESS_KEY"]


@pytest.fixture
def prod_env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARCA_"))}
    root = tmp_path / "root.key"
    env["ARCA_DATABASE"] = str(tmp_path / "arca.db")
    env["ARCA_ROOT_KEY_FILE"] = str(root)
    _arca("init-root-key", str(root), env=env)
    assert (root.stat().st_mode & 0o777) == 0o600
    return env


def test_admin_keys_persistence_and_live_additions(prod_env):
    key_id, secret = _pair(_arca("access-key", "create", "--description", "ci", env=prod_env))
    assert key_id.startswith("AKIA") and len(key_id) == 20
    assert key_id in _arca("access-key", "list", env=prod_env)
    team_arn = _arca("key", "create", "--alias", "alias/team-a", env=prod_env).strip()
    assert re.fullmatch(r"arn:aws:kms:us-east-1:123456789012:key/[0-9a-f-]{36}", team_arn)
    assert "alias/team-a" in _arca("key", "list", env=prod_env)

    srv = Server(prod_env)
    try:
        sm = srv.client(key_id, secret)
        sm.create_secret(Name="team", SecretString="under-team-key", KmsKeyId="alias/team-a")
        assert sm.describe_secret(SecretId="team")["KmsKeyId"] == team_arn
        versions = sm.list_secret_version_ids(SecretId="team")["Versions"]
        assert versions[0]["KmsKeyIds"] == [team_arn]
        sm.create_secret(Name="default", SecretString="under-default-key")
        assert "KmsKeyId" not in sm.describe_secret(SecretId="default")
        with pytest.raises(ClientError) as e:
            sm.create_secret(Name="nokey", SecretString="x", KmsKeyId="alias/missing")
        assert e.value.response["Error"]["Code"] == "EncryptionFailure"

        # Made by the CLI while the server runs: usable at once.
        key2, secret2 = _pair(_arca("access-key", "create", env=prod_env))
        live_arn = _arca("key", "create", "--alias", "live", env=prod_env).strip()
        sm2 = srv.client(key2, secret2)
        sm2.create_secret(Name="live", SecretString="v", KmsKeyId=live_arn)
        assert sm2.describe_secret(SecretId="live")["KmsKeyId"] == live_arn
    finally:
        srv.stop()

    # Everything acknowledged survives a restart.
    srv = Server(prod_env)
    try:
        sm = srv.client(key_id, secret)
        assert sm.get_secret_value(SecretId="team")["SecretString"] == "under-team-key"
        assert sm.get_secret_value(SecretId="default")["SecretString"] == "under-default-key"
        assert sm.get_secret_value(SecretId="live")["SecretString"] == "v"
        with pytest.raises(ClientError) as e:
            srv.client(key_id, "wrong" + secret[5:]).list_secrets()
        assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    finally:
        srv.stop()
    assert "database:" in _arca("status", env=prod_env)


def test_wrong_root_key_is_refused_at_start(prod_env, tmp_path):
    _arca("key", "create", "--alias", "alias/x", env=prod_env)
    other = tmp_path / "other.key"
    _arca("init-root-key", str(other), env=prod_env)
    env = dict(prod_env, ARCA_ROOT_KEY_FILE=str(other))
    out = subprocess.run([_binary(), "server", "--listen", "127.0.0.1:0"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "root key" in (out.stdout + out.stderr)


def test_world_readable_root_key_is_refused(prod_env, tmp_path):
    os.chmod(prod_env["ARCA_ROOT_KEY_FILE"], 0o644)
    out = subprocess.run([_binary(), "status"], env=prod_env, capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "0o644" in out.stderr or "644" in out.stderr


def test_migrate_alone_then_serve_and_a_newer_schema_is_refused(prod_env, tmp_path):
    import sqlite3

    db = Path(prod_env["ARCA_DATABASE"])
    out = _arca("migrate", env=prod_env)
    m = re.search(r"schema version 0 -> (\d+)", out)
    assert m, out
    newest = int(m.group(1))
    assert f"schema version {newest}, up to date" in _arca("migrate", env=prod_env)
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == newest
    key_id, secret = _pair(_arca("access-key", "create", env=prod_env))
    srv = Server(prod_env)
    try:
        sm = srv.client(key_id, secret)
        sm.create_secret(Name="after-migrate", SecretString="v")
        assert sm.get_secret_value(SecretId="after-migrate")["SecretString"] == "v"
    finally:
        srv.stop()

    # A database written by a newer build: refused by both, naming the versions.
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as c:
        c.execute(f"PRAGMA user_version = {newest + 1}")
    env = dict(prod_env, ARCA_DATABASE=str(newer))
    for args in (["migrate"], ["server", "--listen", "127.0.0.1:0"]):
        r = subprocess.run([_binary(), *args], env=env, capture_output=True, text=True, timeout=30)
        assert r.returncode != 0, r.stdout
        assert f"schema version {newest + 1} is newer than this build supports ({newest})" in (
            r.stdout + r.stderr), r.stdout + r.stderr


def test_iam_cli_users_policies_and_keys_reach_a_running_server(prod_env, tmp_path):
    """`arca iam ...` on the store while the server runs: a user, its policy and key
    work within the directory's reread; a deleted key and a removed policy stop working."""
    import json

    admin_id, admin_secret = _pair(_arca("access-key", "create", env=prod_env))
    srv = Server(prod_env)
    try:
        admin = srv.client(admin_id, admin_secret)
        arn = admin.create_secret(Name="cli/one", SecretString="1")["ARN"]
        admin.create_secret(Name="cli/two", SecretString="2")
        user = json.loads(_arca("iam", "create-user", "ops", env=prod_env))
        assert user["Arn"] == "arn:aws:iam::123456789012:user/ops"
        doc = tmp_path / "read-one.json"
        doc.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": arn}]}))
        _arca("iam", "put-policy", "--user", "ops", "--name", "read-one",
              "--document", f"file://{doc}", env=prod_env)
        assert json.loads(_arca("iam", "list-policies", "--user", "ops", env=prod_env)) == {
            "Inline": ["read-one"], "Attached": []}
        key = json.loads(_arca("iam", "create-access-key", "--user", "ops", env=prod_env))
        ops = srv.client(key["AccessKeyId"], key["SecretAccessKey"])

        def reads(secret_id):
            try:
                return ops.get_secret_value(SecretId=secret_id)["SecretString"]
            except ClientError as e:
                return e.response["Error"]["Code"]

        deadline = time.monotonic() + 10
        while reads("cli/one") != "1" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert reads("cli/one") == "1"
        assert reads("cli/two") == "AccessDeniedException"

        _arca("iam", "delete-policy", "--user", "ops", "--name", "read-one", env=prod_env)
        deadline = time.monotonic() + 10
        while reads("cli/one") == "1" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert reads("cli/one") == "AccessDeniedException"

        _arca("iam", "delete-access-key", "--user", "ops", key["AccessKeyId"], env=prod_env)
        deadline = time.monotonic() + 10
        while reads("cli/one") != "UnrecognizedClientException" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert reads("cli/one") == "UnrecognizedClientException"
        _arca("iam", "delete-user", "ops", env=prod_env)
        assert "ops" not in _arca("iam", "list-users", env=prod_env)
    finally:
        srv.stop()


def test_key_policies_decide_who_may_use_a_customer_key(prod_env, tmp_path):
    """Reading a secret under a customer key needs the secret permission and the key
    permission, as in AWS: under KMS's default policy the identity policy must allow
    kms:Decrypt; a key policy that does not name the account refuses even the
    administrator. The default key needs only the secret permission."""
    import json

    admin_id, admin_secret = _pair(_arca("access-key", "create", env=prod_env))
    key_arn = _arca("key", "create", "--alias", "alias/team", env=prod_env).strip()
    srv = Server(prod_env)
    try:
        admin = srv.client(admin_id, admin_secret)
        team = admin.create_secret(Name="kp/team", SecretString="t", KmsKeyId="alias/team")["ARN"]
        plain = admin.create_secret(Name="kp/plain", SecretString="p")["ARN"]
        _arca("iam", "create-user", "reader", env=prod_env)
        read_all = {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*"}
        doc = tmp_path / "p.json"
        doc.write_text(json.dumps({"Version": "2012-10-17", "Statement": [read_all]}))
        _arca("iam", "put-policy", "--user", "reader", "--name", "p",
              "--document", f"file://{doc}", env=prod_env)
        k = json.loads(_arca("iam", "create-access-key", "--user", "reader", env=prod_env))
        reader = srv.client(k["AccessKeyId"], k["SecretAccessKey"])

        def code(client, secret_id):
            try:
                return client.get_secret_value(SecretId=secret_id)["SecretString"]
            except ClientError as e:
                return (e.response["Error"]["Code"], e.response["Error"]["Message"])

        def eventually(client, secret_id, want):
            deadline = time.monotonic() + 10
            while code(client, secret_id) != want and time.monotonic() < deadline:
                time.sleep(0.2)
            assert code(client, secret_id) == want

        denied = ("AccessDeniedException", "Access to KMS is not allowed")
        eventually(reader, plain, "p")
        assert code(reader, team) == denied
        # kms:Decrypt through Secrets Manager, for this key only.
        doc.write_text(json.dumps({"Version": "2012-10-17", "Statement": [read_all, {
            "Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
            "Condition": {"StringEquals": {
                "kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}}]}))
        _arca("iam", "put-policy", "--user", "reader", "--name", "p",
              "--document", f"file://{doc}", env=prod_env)
        eventually(reader, team, "t")
        # Writing under the key needs kms:GenerateDataKey, which the reader lacks.
        assert code(admin, team) == "t"

        # A key policy naming only the reader: the account's identity policies no longer
        # count, so the administrator is refused and the reader (named) is not.
        kp = tmp_path / "key.json"
        kp.write_text(json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/reader"},
            "Action": "kms:Decrypt", "Resource": "*"}]}))
        _arca("key", "put-policy", "alias/team", "--policy", f"file://{kp}", env=prod_env)
        assert json.loads(_arca("key", "get-policy", "alias/team", env=prod_env)) == \
            json.loads(kp.read_text())
        eventually(admin, team, denied)
        assert code(reader, team) == "t"
        assert code(admin, plain) == "p"
        with pytest.raises(ClientError) as e:
            admin.put_secret_value(SecretId=team, SecretString="new")
        assert e.value.response["Error"]["Message"] == "Access to KMS is not allowed"
    finally:
        srv.stop()


def test_cross_account_read_needs_both_policies_and_a_customer_key(prod_env, tmp_path):
    """The seed's cross-account pattern: account B's user reads account A's secret by
    ARN when A's resource policy shares it with B, B's identity policy allows it, and the
    secret is under a customer key whose policy lets B decrypt. Each missing part refuses
    with AWS's text."""
    import json

    other = "444455556666"
    admin_id, admin_secret = _pair(_arca("access-key", "create", env=prod_env))
    kp = tmp_path / "key.json"
    kp.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
         "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other}:root"},
         "Action": "kms:Decrypt", "Resource": "*"}]}))
    key_arn = _arca("key", "create", "--alias", "alias/shared", "--policy", f"file://{kp}",
                    env=prod_env).strip()
    _arca("iam", "--account", other, "create-user", "bob", env=prod_env)
    k = json.loads(_arca("iam", "--account", other, "create-access-key", "--user", "bob",
                         env=prod_env))
    srv = Server(prod_env)
    try:
        admin = srv.client(admin_id, admin_secret)
        shared = admin.create_secret(Name="xa/shared", SecretString="s",
                                     KmsKeyId="alias/shared")["ARN"]
        default_key = admin.create_secret(Name="xa/default", SecretString="d")["ARN"]
        bob = srv.client(k["AccessKeyId"], k["SecretAccessKey"])
        sts = boto3.session.Session(aws_access_key_id=k["AccessKeyId"],
                                    aws_secret_access_key=k["SecretAccessKey"],
                                    region_name="us-east-1").client(
            "sts", endpoint_url=srv.endpoint, config=Config(retries={"max_attempts": 1}))
        assert sts.get_caller_identity()["Arn"] == f"arn:aws:iam::{other}:user/bob"

        def read(secret_id):
            try:
                return bob.get_secret_value(SecretId=secret_id)["SecretString"]
            except ClientError as e:
                return (e.response["Error"]["Code"], e.response["Error"]["Message"])

        # Nothing shared yet, and bob's own policy allows nothing.
        got = read(shared)
        assert got[0] == "AccessDeniedException", got
        assert "because no identity-based policy allows" in got[1], got

        doc = tmp_path / "bob.json"
        doc.write_text(json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Resource": "*", "Action": [
                "secretsmanager:GetSecretValue", "secretsmanager:ListSecrets",
                "secretsmanager:CreateSecret"]},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn}]}))
        _arca("iam", "--account", other, "put-policy", "--user", "bob", "--name", "read",
              "--document", f"file://{doc}", env=prod_env)
        deadline = time.monotonic() + 10
        while "identity-based" in str(read(shared)) and time.monotonic() < deadline:
            time.sleep(0.2)
        # Bob's policy allows; A has not shared the secret.
        assert read(shared) == ("AccessDeniedException",
                                f"User: arn:aws:iam::{other}:user/bob is not authorized to "
                                f"perform: secretsmanager:GetSecretValue on resource: {shared} "
                                "because no resource-based policy allows the "
                                "secretsmanager:GetSecretValue action")
        share = json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{other}:root"},
            "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})
        admin.put_resource_policy(SecretId=shared, ResourcePolicy=share)
        admin.put_resource_policy(SecretId=default_key, ResourcePolicy=share)
        assert read(shared) == "s"
        # Under the AWS managed key the secret cannot be shared (Secrets Manager docs).
        assert read(default_key) == ("AccessDeniedException", "Access to KMS is not allowed")
        # A name names a secret of bob's own account, which holds none here.
        assert read("xa/shared")[0] == "ResourceNotFoundException"
        assert bob.list_secrets()["SecretList"] == []
        with pytest.raises(ClientError) as e:
            bob.create_secret(Name="mine", SecretString="x")
        assert e.value.response["Error"]["Code"] == "InvalidRequestException"
    finally:
        srv.stop()
