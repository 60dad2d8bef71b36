"""Sync from Vault/OpenBao (issue 14) against a real OpenBao dev server: KV v2 and v1,
token and AppRole, into this Arca and into moto (an AWS stand-in reached through the
same SDK path). A counting proxy in front of OpenBao proves what each pass read; the
`arca sync` commands and the `ArcaSync.RunJob` push trigger drive the passes."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import time
import uuid

import boto3
import botocore.config
import pytest
from botocore.exceptions import ClientError

from conftest import arca_binary
from helpers import ACCESS_KEY, REGION, SECRET_KEY, RawClient, lookup_trail, wait_until
from rotation_helpers import start_server, stop_server, toml_str
from sync_helpers import ROOT_TOKEN, CountingProxy, Moto, OpenBao

OWNER, VERSION, PATH = "arca:sync:job", "arca:sync:source-version", "arca:sync:source-path"

READ_ONLY_POLICY = """
path "secret/data/{p}*"     {{ capabilities = ["read"] }}
path "secret/metadata/{p}*" {{ capabilities = ["read", "list"] }}
path "kv1/{p}*"             {{ capabilities = ["read", "list"] }}
"""


@pytest.fixture(scope="module")
def bao(tmp_path_factory):
    b = OpenBao(tmp_path_factory.mktemp("openbao"))
    b.api("POST", "sys/mounts/kv1", {"type": "kv", "options": {"version": "1"}})
    b.api("POST", "sys/auth/approle", {"type": "approle"})
    yield b
    b.stop()


@pytest.fixture(scope="module")
def moto():
    m = Moto()
    yield m
    m.stop()


@pytest.fixture
def proxy(bao):
    p = CountingProxy(bao.address)
    yield p
    p.stop()


@pytest.fixture
def prefix():
    return f"t{uuid.uuid4().hex[:8]}/"


def token_for(bao, prefix: str, ttl: str = "1h", renewable: bool = True,
              default_policy: bool = False) -> str:
    name = prefix.strip("/")
    bao.api("PUT", f"sys/policies/acl/{name}", {"policy": READ_ONLY_POLICY.format(p=prefix)})
    r = bao.api("POST", "auth/token/create", {"policies": [name], "ttl": ttl,
                                              "renewable": renewable,
                                              "no_default_policy": not default_policy})
    return r["auth"]["client_token"]


def write_private(path, text: str):
    path.write_text(text)
    path.chmod(0o600)
    return path


def job_toml(name: str, address: str, prefix: str, token_file=None, *, mount="secret",
             extra: str = "", source_extra: str = "", target: str = "", approle=None,
             interval: int = 3600) -> str:
    creds = (f"token_file = {toml_str(str(token_file))}\n" if token_file else
             f"approle_role_id = {toml_str(approle[0])}\n"
             f"approle_secret_id_file = {toml_str(str(approle[1]))}\n")
    return (f"[[sync]]\nname = {toml_str(name)}\ninterval_secs = {interval}\n{extra}"
            f"[sync.source]\naddress = {toml_str(address)}\nmount = {toml_str(mount)}\n"
            f"prefixes = [{toml_str(prefix)}]\n{creds}{source_extra}"
            f"[sync.target]\n{target}")


class Site:
    """An Arca server running sync jobs, and the `arca sync` commands against it."""

    def __init__(self, workdir, config: str, extra_env: dict | None = None):
        self.workdir = workdir
        self.srv = start_server(workdir, config, extra_env=extra_env)
        self.sm = boto3.client("secretsmanager", endpoint_url=self.srv.endpoint,
                               region_name=REGION, aws_access_key_id=ACCESS_KEY,
                               aws_secret_access_key=SECRET_KEY)
        # The first pass runs at start: wait for it, so each test drives the next ones.
        wait_until(lambda: all(j.get("last_pass") for j in self.status()["Jobs"]),
                   timeout=30, what="the first passes")

    def cli(self, *args, check=True):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        r = subprocess.run([str(arca_binary()), "sync", *args, "--endpoint-url", self.srv.endpoint],
                           env=env, capture_output=True, text=True, timeout=120)
        if check:
            assert r.returncode == 0, r.stderr + r.stdout
        return r

    def run(self, job: str, *paths, check=True) -> dict:
        args = ["run", job] + [a for p in paths for a in ("--path", p)]
        r = self.cli(*args, check=False)
        out = json.loads(r.stdout)
        if check:
            assert out["outcome"] in ("ok", "partial"), out
        return out

    def status(self, job: str | None = None) -> dict:
        return json.loads(self.cli("status", *([job] if job else [])).stdout)

    def tags(self, name: str, sm=None) -> dict:
        d = (sm or self.sm).describe_secret(SecretId=name)
        return {t["Key"]: t["Value"] for t in d.get("Tags", [])}

    def value(self, name: str, sm=None) -> str:
        return (sm or self.sm).get_secret_value(SecretId=name)["SecretString"]

    def trail(self, event_name: str) -> list[dict]:
        ct = boto3.client("cloudtrail", endpoint_url=self.srv.endpoint, region_name=REGION,
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
        return lookup_trail(ct, EventName=event_name)

    def stop(self):
        stop_server(self.srv)


@pytest.fixture
def site_factory(tmp_path):
    sites = []

    def make(config: str, extra_env: dict | None = None) -> Site:
        s = Site(tmp_path, config, extra_env)
        sites.append(s)
        return s

    yield make
    for s in sites:
        s.stop()


def test_kv2_create_update_and_an_unchanged_pass_that_reads_no_values(bao, proxy, prefix,
                                                                       site_factory, tmp_path):
    bao.put("secret", f"{prefix}db", {"user": "app", "password": "s3cret-1"})
    bao.put("secret", f"{prefix}api/key", {"token": "abc"})
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
    site = site_factory(job_toml("app", proxy.address, prefix, tok))

    # The first pass created both, with the ownership, path and version tags.
    assert json.loads(site.value(f"{prefix}db")) == {"user": "app", "password": "s3cret-1"}
    assert json.loads(site.value(f"{prefix}api/key")) == {"token": "abc"}
    tags = site.tags(f"{prefix}db")
    assert tags[OWNER] == "app" and tags[PATH] == f"{prefix}db"
    assert tags[VERSION].startswith("1@")

    # An update moves the version tag and writes one new version.
    bao.put("secret", f"{prefix}db", {"user": "app", "password": "s3cret-2"})
    r = site.run("app")
    assert r["counts"].get("update") == 1 and r["counts"].get("unchanged") == 1, r
    assert json.loads(site.value(f"{prefix}db"))["password"] == "s3cret-2"
    assert site.tags(f"{prefix}db")[VERSION].startswith("2@")
    versions = site.sm.list_secret_version_ids(SecretId=f"{prefix}db")["Versions"]
    assert len(versions) == 2

    # Unchanged: OpenBao saw lists and metadata reads only, never a data read.
    proxy.reset()
    r = site.run("app")
    assert r["counts"] == {"unchanged": 2}, r
    assert r["source_value_reads"] == 0
    assert proxy.counts["data"] == 0, proxy.paths
    assert proxy.counts["metadata"] == 2 and proxy.counts["list"] >= 1

    # The same source version written again (a retried pass) is not a new version:
    # the write token is derived from (job, path, version).
    st = site.status("app")["Jobs"][0]
    assert st["last_pass"]["outcome"] == "ok" and st["lag_secs"] == 0
    assert st["next_run_after"] > st["last_pass"]["finished"]
    assert site.trail("SyncSucceeded"), "a pass that wrote leaves SyncSucceeded in the trail"


def test_plan_prints_without_writing_or_reading_values(bao, proxy, prefix, site_factory, tmp_path):
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
    site = site_factory(job_toml("app", proxy.address, prefix, tok))
    bao.put("secret", f"{prefix}new", {"k": "v"})
    proxy.reset()
    out = json.loads(site.cli("plan", "app").stdout)
    steps = {s["name"]: s for s in out["steps"]}
    assert steps[f"{prefix}new"]["action"] == "create", out
    assert steps[f"{prefix}new"]["why"]
    assert proxy.counts["data"] == 0
    with pytest.raises(ClientError):
        site.sm.describe_secret(SecretId=f"{prefix}new")


def test_per_key_granularity_with_a_name_template(bao, proxy, prefix, site_factory, tmp_path):
    bao.put("secret", f"{prefix}svc", {"user": "u1", "password": "p1"})
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
    site = site_factory(job_toml(
        "keys", proxy.address, prefix, tok,
        extra='granularity = "key"\nname_template = "mirror/{mount}/{full_path}/{key}"\n'
              'tags = { team = "platform" }\n'))
    assert site.value(f"mirror/secret/{prefix}svc/user") == "u1"
    assert site.value(f"mirror/secret/{prefix}svc/password") == "p1"
    tags = site.tags(f"mirror/secret/{prefix}svc/password")
    assert tags["arca:sync:source-key"] == "password" and tags["team"] == "platform"
    # A key removed from the entry is an orphan: with the default policy it is kept.
    bao.put("secret", f"{prefix}svc", {"user": "u2"})
    r = site.run("keys")
    assert r["counts"].get("update") == 1 and r["counts"].get("keep") == 1, r
    assert site.value(f"mirror/secret/{prefix}svc/user") == "u2"


def test_a_name_held_by_an_unowned_secret_is_a_conflict_and_left_alone(bao, proxy, prefix,
                                                                       site_factory, tmp_path):
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
    site = site_factory(job_toml("app", proxy.address, prefix, tok))
    site.sm.create_secret(Name=f"{prefix}taken", SecretString="hand-made")
    bao.put("secret", f"{prefix}taken", {"k": "from-bao"})
    bao.put("secret", f"{prefix}free", {"k": "ok"})
    r = site.run("app")
    assert r["outcome"] == "partial" and r["counts"].get("conflict") == 1, r
    assert r["counts"].get("create") == 1
    assert [f["name"] for f in r["failures"]] == [f"{prefix}taken"]
    assert site.value(f"{prefix}taken") == "hand-made"
    assert OWNER not in site.tags(f"{prefix}taken")
    assert site.trail("SyncFailed")


def test_deletion_policies(bao, proxy, prefix, site_factory, tmp_path):
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
    for p in ("keep", "del", "now"):
        bao.put("secret", f"{prefix}{p}/a", {"k": p})
    config = (job_toml("keep", proxy.address, f"{prefix}keep/", tok)
              + job_toml("del", proxy.address, f"{prefix}del/", tok,
                         extra='deletion = "delete"\nrecovery_window_days = 7\n')
              + job_toml("now", proxy.address, f"{prefix}now/", tok, extra='deletion = "delete-now"\n'))
    site = site_factory(config)
    for p in ("keep", "del", "now"):
        assert json.loads(site.value(f"{prefix}{p}/a")) == {"k": p}
        bao.api("DELETE", f"secret/metadata/{prefix}{p}/a")
        site.run(p)
    assert site.value(f"{prefix}keep/a")  # keep: left as it was
    d = site.sm.describe_secret(SecretId=f"{prefix}del/a")
    assert "DeletedDate" in d  # delete: scheduled, recoverable
    with pytest.raises(ClientError) as e:
        site.sm.describe_secret(SecretId=f"{prefix}now/a")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"

    # A path written again after deletion restores the scheduled secret.
    bao.put("secret", f"{prefix}del/a", {"k": "again"})
    r = site.run("del")
    assert r["counts"].get("restore") == 1, r
    assert json.loads(site.value(f"{prefix}del/a")) == {"k": "again"}


def test_kv1_with_approle_uses_a_digest_tag(bao, proxy, prefix, site_factory, tmp_path):
    name = prefix.strip("/")
    bao.api("PUT", f"sys/policies/acl/{name}", {"policy": READ_ONLY_POLICY.format(p=prefix)})
    bao.api("POST", f"auth/approle/role/{name}", {"token_policies": [name], "token_ttl": "1h"})
    role_id = bao.api("GET", f"auth/approle/role/{name}/role-id")["data"]["role_id"]
    secret_id = bao.api("POST", f"auth/approle/role/{name}/secret-id")["data"]["secret_id"]
    sid = write_private(tmp_path / "secret-id", secret_id)
    bao.put("kv1", f"{prefix}one", {"a": "1"}, v1=True)
    site = site_factory(job_toml("v1", proxy.address, prefix, mount="kv1",
                                 approle=(role_id, sid), source_extra='kv_version = "1"\n'))
    assert json.loads(site.value(f"{prefix}one")) == {"a": "1"}
    tag = site.tags(f"{prefix}one")[VERSION]
    # A keyed digest of the value (KV v1 has no versions), never the value itself.
    assert tag.startswith("hmac-sha256:") and len(tag) == len("hmac-sha256:") + 64, tag
    r = site.run("v1")
    assert r["counts"] == {"unchanged": 1}, r
    bao.put("kv1", f"{prefix}one", {"a": "2"}, v1=True)
    r = site.run("v1")
    assert r["counts"] == {"update": 1}, r
    assert json.loads(site.value(f"{prefix}one")) == {"a": "2"}
    assert site.tags(f"{prefix}one")[VERSION] != tag


def _moto_target(moto, tmp_path) -> str:
    secret = write_private(tmp_path / "moto-secret", "testing")
    return (f"[[remotes]]\nname = \"aws\"\nregion = \"eu-west-1\"\n"
            f"endpoint = {toml_str(moto.endpoint)}\naccess_key_id = \"testing\"\n"
            f"secret_access_key_file = {toml_str(str(secret))}\ntimeout_secs = 3\n")


def test_into_a_second_secrets_manager_endpoint(bao, proxy, moto, prefix, site_factory, tmp_path):
    bao.put("secret", f"{prefix}db", {"p": "1"})
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
    site = site_factory(_moto_target(moto, tmp_path)
                        + job_toml("aws", proxy.address, prefix, tok, target='remote = "aws"\n'))
    aws = boto3.client("secretsmanager", endpoint_url=moto.endpoint, region_name="eu-west-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    assert json.loads(site.value(f"{prefix}db", sm=aws)) == {"p": "1"}
    assert site.tags(f"{prefix}db", sm=aws)[OWNER] == "aws"
    bao.put("secret", f"{prefix}db", {"p": "2"})
    r = site.run("aws")
    assert r["counts"] == {"update": 1}, r
    assert json.loads(site.value(f"{prefix}db", sm=aws)) == {"p": "2"}
    # Nothing landed in Arca itself.
    with pytest.raises(ClientError):
        site.sm.describe_secret(SecretId=f"{prefix}db")


def test_source_down_fails_the_pass_deletes_nothing_and_recovers(bao, proxy, prefix,
                                                                 site_factory, tmp_path):
    bao.put("secret", f"{prefix}a", {"k": "1"})
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
    site = site_factory(job_toml("app", proxy.address, prefix, tok, extra='deletion = "delete-now"\n'))
    proxy.down = True
    r = site.run("app", check=False)
    assert r["outcome"] == "failed" and "source" in r["error"], r
    assert site.value(f"{prefix}a")  # nothing deleted on a failed view of the source
    failed = site.trail("SyncFailed")
    assert failed and failed[-1]["additionalEventData"]["job"] == "app"
    st = site.status("app")["Jobs"][0]
    assert st["last_pass"]["outcome"] == "failed" and st["lag_secs"] > 0
    proxy.down = False
    bao.put("secret", f"{prefix}a", {"k": "2"})
    r = site.run("app")
    assert r["outcome"] == "ok" and r["counts"] == {"update": 1}, r


def test_target_down_is_retried_and_converges(bao, proxy, moto, prefix, site_factory, tmp_path):
    target = CountingProxy(moto.endpoint)
    try:
        secret = write_private(tmp_path / "moto-secret", "testing")
        remote = (f"[[remotes]]\nname = \"aws\"\nregion = \"eu-west-1\"\n"
                  f"endpoint = {toml_str(target.address)}\naccess_key_id = \"testing\"\n"
                  f"secret_access_key_file = {toml_str(str(secret))}\ntimeout_secs = 3\n")
        tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
        site = site_factory(remote + job_toml("aws-down", proxy.address, prefix, tok,
                                              target='remote = "aws"\n'))
        target.down = True
        bao.put("secret", f"{prefix}x", {"k": "1"})
        r = site.run("aws-down", check=False)
        assert r["outcome"] == "failed", r
        target.down = False
        r = site.run("aws-down")
        assert r["counts"] == {"create": 1}, r
        aws = boto3.client("secretsmanager", endpoint_url=moto.endpoint, region_name="eu-west-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        assert json.loads(aws.get_secret_value(SecretId=f"{prefix}x")["SecretString"]) == {"k": "1"}
    finally:
        target.stop()


def test_an_expired_token_is_a_clear_failure(bao, proxy, prefix, site_factory, tmp_path):
    bao.put("secret", f"{prefix}a", {"k": "1"})
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix, ttl="4s", renewable=False))
    site = site_factory(job_toml("app", proxy.address, prefix, tok))
    assert site.value(f"{prefix}a")
    time.sleep(5)
    r = site.run("app", check=False)
    assert r["outcome"] == "failed", r
    assert "token" in r["error"].lower() or "permission denied" in r["error"].lower(), r
    assert ROOT_TOKEN not in r["error"] and tok.read_text() not in r["error"]
    assert site.srv.proc.poll() is None
    assert site.value(f"{prefix}a")


def test_push_trigger_syncs_one_path_now(bao, proxy, prefix, site_factory, tmp_path):
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
    bao.put("secret", f"{prefix}other", {"k": "1"})
    site = site_factory(job_toml("app", proxy.address, prefix, tok))
    bao.put("secret", f"{prefix}hot", {"k": "pushed"})
    bao.put("secret", f"{prefix}other", {"k": "2"})
    proxy.reset()
    raw = RawClient(site.srv.endpoint)
    r = raw.call("ArcaSync.RunJob", {"Job": "app", "Paths": [f"{prefix}hot"]})
    assert r.status == 200, r.json
    body = r.json
    assert body["listed"] == 1 and body["counts"] == {"create": 1}, body
    assert json.loads(site.value(f"{prefix}hot")) == {"k": "pushed"}
    # Only that path was looked at: the other change waits for the next full pass.
    assert json.loads(site.value(f"{prefix}other")) == {"k": "1"}
    assert proxy.counts["list"] == 0
    # Unknown jobs and unsigned calls are refused.
    assert raw.call("ArcaSync.RunJob", {"Job": "nope"}).status == 400
    assert raw.call("ArcaSync.RunJob", {"Job": "app"}, sign=False).status in (400, 403)


def test_soft_deleted_and_destroyed_current_versions_follow_the_policy(bao, proxy, prefix,
                                                                       site_factory, tmp_path):
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
    bao.put("secret", f"{prefix}soft", {"k": "1"})
    bao.put("secret", f"{prefix}gone", {"k": "1"})
    site = site_factory(job_toml("app", proxy.address, prefix, tok,
                                 extra='deletion = "delete"\nrecovery_window_days = 7\n'))
    # Soft-delete the current version of one, destroy the other's.
    bao.api("DELETE", f"secret/data/{prefix}soft")
    bao.api("PUT", f"secret/destroy/{prefix}gone", {"versions": [1]})
    out = json.loads(site.cli("plan", "app").stdout)
    why = {s["name"]: s for s in out["steps"]}
    assert why[f"{prefix}soft"]["action"] == "delete", out
    assert "deleted or destroyed" in why[f"{prefix}soft"]["why"]
    r = site.run("app")
    assert r["counts"] == {"delete": 2}, r
    for name in ("soft", "gone"):
        assert "DeletedDate" in site.sm.describe_secret(SecretId=f"{prefix}{name}")
    # Undeleting the version in the source brings the secret back.
    bao.api("POST", f"secret/undelete/{prefix}soft", {"versions": [1]})
    r = site.run("app")
    assert r["counts"].get("restore") == 1, r
    assert "DeletedDate" not in site.sm.describe_secret(SecretId=f"{prefix}soft")
    assert json.loads(site.value(f"{prefix}soft")) == {"k": "1"}


def test_failures_reach_a_webhook_through_a_rule(bao, proxy, prefix, site_factory, tmp_path):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from rotation_helpers import signed_by_arca, toml_function, write_hmac_secret

    secret = write_hmac_secret(tmp_path / "hmac.key")
    got: list[dict] = []

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if signed_by_arca(secret, self.headers, body):
                got.append(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        hook_arn = "arn:aws:lambda:us-east-1:123456789012:function:notify"
        pattern = json.dumps({"source": ["arca.sync"], "detail": {"eventName": ["SyncFailed"]}})
        rule = (f"[[rules]]\nname = \"sync-failures\"\npattern = {toml_str(pattern)}\n"
                f"[[rules.targets]]\nid = \"notify\"\narn = {toml_str(hook_arn)}\n")
        tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
        config = (toml_function(hook_arn, type="http",
                                url=f"http://127.0.0.1:{httpd.server_address[1]}/hook",
                                hmac_secret_file=str(tmp_path / "hmac.key"), timeout_secs=5)
                  + rule + job_toml("app", proxy.address, prefix, tok))
        site = site_factory(config)
        proxy.down = True
        site.run("app", check=False)
        wait_until(lambda: got, timeout=15, what="the SyncFailed event at the webhook")
        e = got[0]
        assert e["source"] == "arca.sync" and e["detail-type"] == "AWS Service Event via CloudTrail"
        data = e["detail"]["additionalEventData"]
        assert data["job"] == "app" and data["outcome"] == "failed"
        assert "503" in data["failureReason"] or "down" in data["failureReason"]
        assert tok.read_text() not in json.dumps(e)
    finally:
        proxy.down = False
        httpd.shutdown()


def test_jobs_added_and_removed_while_the_server_runs(bao, proxy, prefix, tmp_path):
    """`arca sync add/list/remove` on the server's database: the running server starts an
    added job within seconds and stops a removed one."""
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
    bao.put("secret", f"{prefix}added", {"k": "1"})
    env = {"ARCA_DATABASE": str(tmp_path / "arca.db"),
           "ARCA_ROOT_KEY": base64.b64encode(os.urandom(32)).decode()}
    srv = start_server(tmp_path, "", extra_env=env)
    try:
        job = tmp_path / "job.toml"
        job.write_text(job_toml("added", proxy.address, prefix, tok).replace("[[sync]]\n", "")
                       .replace("[sync.source]", "[source]").replace("[sync.target]", "[target]"))
        cli_env = dict(os.environ, **env)

        def arca(*args):
            r = subprocess.run([str(arca_binary()), "sync", *args], env=cli_env,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            return r.stdout

        arca("add", str(job))
        assert json.loads(arca("list").splitlines()[0])["origin"] == "added"
        sm = boto3.client("secretsmanager", endpoint_url=srv.endpoint, region_name=REGION,
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

        def arrived():
            try:
                return json.loads(sm.get_secret_value(SecretId=f"{prefix}added")["SecretString"])
            except ClientError:
                return None

        assert wait_until(arrived, timeout=20, what="the added job's first pass") == {"k": "1"}
        arca("remove", "added")
        raw = RawClient(srv.endpoint)
        wait_until(lambda: raw.call("ArcaSync.GetStatus", {"Job": "added"}).status == 400,
                   timeout=20, what="the removed job to stop")
        assert arca("list") == ""
    finally:
        stop_server(srv)


def _leases(db):
    c = sqlite3.connect(db, timeout=30, isolation_level=None)
    c.execute("PRAGMA busy_timeout = 30000")
    return c


def test_a_pass_that_lost_its_lease_writes_nothing(bao, proxy, prefix, site_factory, tmp_path):
    """Another node takes the job's lease while this node's pass reads a value (a pause, a
    partition): the pass's write is refused. Once the lease comes back, the next pass
    writes."""
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
    db = tmp_path / "arca.db"
    env = {"ARCA_DATABASE": str(db), "ARCA_ROOT_KEY": base64.b64encode(os.urandom(32)).decode()}
    site = site_factory(job_toml("fenced", proxy.address, prefix, tok, interval=1), env)
    name = f"{prefix}db"

    proxy.gate.clear()
    try:
        bao.put("secret", name, {"password": "p1"})
        assert proxy.held.wait(timeout=30), "no pass read the new value"
        # Another node now holds the job's lease (a new grant: a higher token).
        with _leases(db) as c:
            n = c.execute("UPDATE leases SET holder = 'another-node', token = token + 1, "
                          "expires_at = ?1 WHERE job = 'sync/fenced'",
                          (int(time.time() * 1000) + 600_000,)).rowcount
            assert n == 1
    finally:
        proxy.gate.set()

    def lost():
        p = site.status("fenced")["Jobs"][0].get("last_pass") or {}
        errors = [f["error"] for f in p.get("failures", [])]
        return errors if any("lease was lost" in e for e in errors) else None

    wait_until(lost, timeout=30, what="the pass to find its lease lost")
    with pytest.raises(ClientError) as e:
        site.sm.describe_secret(SecretId=name)
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"

    # The other node "gives the lease up": this node takes it (a new token) and writes.
    with _leases(db) as c:
        c.execute("UPDATE leases SET expires_at = 0 WHERE job = 'sync/fenced'")
    assert wait_until(lambda: _value_or_none(site, name), timeout=30,
                      what="the next holder's pass") == '{"password":"p1"}'


def _value_or_none(site, name):
    try:
        return site.value(name)
    except ClientError:
        return None


def test_an_api_write_carrying_a_lost_lease_is_refused(site_factory, tmp_path):
    """The fence a sync job sends with its writes into Arca (x-arca-fence): a write under
    a lease that no longer holds is refused whole; under the current grant it applies."""
    db = tmp_path / "arca.db"
    env = {"ARCA_DATABASE": str(db), "ARCA_ROOT_KEY": base64.b64encode(os.urandom(32)).decode()}
    srv = start_server(tmp_path, "", extra_env=env)
    try:
        sm = boto3.client("secretsmanager", endpoint_url=srv.endpoint, region_name=REGION,
                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                          config=botocore.config.Config(retries={"total_max_attempts": 1}))
        sm.create_secret(Name="fenced", SecretString="v1")
        # The purge job's lease, which the server holds from its start.
        with _leases(db) as c:
            holder, token = wait_until(
                lambda: c.execute("SELECT holder, token FROM leases WHERE job = 'purge' "
                                  "AND expires_at > ?1", (int(time.time() * 1000),)).fetchone(),
                timeout=20, what="the purge lease")
        fence = {"value": ""}
        sm.meta.events.register("before-sign.secrets-manager.PutSecretValue",
                                lambda request, **_: request.headers.__setitem__(
                                    "x-arca-fence", fence["value"]))
        for stale in (f"{token - 1} {holder} purge", f"{token} another-node purge",
                      f"{token} {holder} no-such-job"):
            fence["value"] = stale
            with pytest.raises(ClientError) as e:
                sm.put_secret_value(SecretId="fenced", SecretString="late")
            assert e.value.response["Error"]["Code"] == "InternalServiceError", stale
        assert sm.get_secret_value(SecretId="fenced")["SecretString"] == "v1"
        assert len(sm.list_secret_version_ids(SecretId="fenced")["Versions"]) == 1
        fence["value"] = f"{token} {holder} purge"
        sm.put_secret_value(SecretId="fenced", SecretString="v2")
        assert sm.get_secret_value(SecretId="fenced")["SecretString"] == "v2"
    finally:
        stop_server(srv)


def test_tls_to_the_source_with_a_ca_file_and_a_namespace(tmp_path_factory, site_factory, tmp_path):
    b = OpenBao(tmp_path_factory.mktemp("openbao-tls"), tls=True)
    try:
        b.api("POST", "sys/namespaces/team-a")
        b.api("POST", "sys/mounts/secret", {"type": "kv", "options": {"version": "2"}},
              namespace="team-a")
        b.api("POST", "secret/data/app/db", {"data": {"p": "in-namespace"}}, namespace="team-a")
        b.api("POST", "secret/data/app/db", {"data": {"p": "root-namespace"}})
        tok = write_private(tmp_path / "bao.token", ROOT_TOKEN)
        site = site_factory(job_toml(
            "tls", b.address, "app/", tok,
            source_extra=f"ca_file = {toml_str(b.ca)}\nnamespace = \"team-a\"\n"))
        assert json.loads(site.value("app/db")) == {"p": "in-namespace"}
    finally:
        b.stop()


def test_a_renewable_token_is_renewed_across_passes(bao, proxy, prefix, site_factory, tmp_path):
    bao.put("secret", f"{prefix}a", {"k": "1"})
    # The default policy is what lets a token look itself up and renew itself.
    raw_token = token_for(bao, prefix, ttl="4s", renewable=True, default_policy=True)
    tok = write_private(tmp_path / "bao.token", raw_token)
    site = site_factory(job_toml("app", proxy.address, prefix, tok))
    # Without renewal the token would be gone after 4 s; passes every 1.5 s keep it.
    for n in range(7):
        time.sleep(1.5)
        bao.put("secret", f"{prefix}a", {"k": str(n + 2)})
        r = site.run("app")
        assert r["outcome"] == "ok" and r["counts"] == {"update": 1}, (n, r)
    assert any(p.endswith("/renew-self") for _, p in proxy.paths)


def test_a_job_writes_as_its_role_and_only_where_the_role_may(bao, proxy, prefix, site_factory,
                                                              tmp_path):
    """A job with `role` writes into this Arca with sessions of that role, not with the
    service's full key: what the role's policy allows is written (the trail names the
    role's session), what it does not is a failure of that path."""
    bao.put("secret", f"{prefix}ok/db", {"password": "fine"})
    bao.put("secret", f"{prefix}blocked/db", {"password": "nope"})
    tok = write_private(tmp_path / "bao.token", token_for(bao, prefix))
    arn = f"arn:aws:secretsmanager:*:123456789012:secret:{prefix}"
    role_policy = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:*", "Resource": f"{arn}ok/*"},
        {"Effect": "Allow", "Action": ["secretsmanager:ListSecrets",
                                       "secretsmanager:BatchGetSecretValue"], "Resource": "*"},
        {"Effect": "Allow", "Action": "secretsmanager:CreateSecret", "Resource": "*",
         "Condition": {"StringLike": {"secretsmanager:Name": f"{prefix}ok/*"}}},
    ]})
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "arca.sync"}, "Action": "sts:AssumeRole"}]})
    config = (job_toml("as-role", proxy.address, prefix, tok, target='role = "sync-writer"\n')
              + f"\n[[iam.roles]]\nname = \"sync-writer\"\ntrust = {toml_str(trust)}\n"
              + f"policies = {{ write = {toml_str(role_policy)} }}\n")
    site = site_factory(config)
    assert json.loads(site.value(f"{prefix}ok/db")) == {"password": "fine"}
    with pytest.raises(ClientError) as e:
        site.sm.describe_secret(SecretId=f"{prefix}blocked/db")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"
    last = site.status("as-role")["Jobs"][0]["last_pass"]
    assert last["outcome"] == "partial", last
    created = [r for r in site.trail("CreateSecret")
               if r["requestParameters"].get("name") == f"{prefix}ok/db"]
    assert created, "the job's CreateSecret is in the trail"
    who = created[0]["userIdentity"]
    assert who["type"] == "AssumedRole", who
    assert who["arn"] == "arn:aws:sts::123456789012:assumed-role/sync-writer/sync-as-role", who
