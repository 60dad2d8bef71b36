"""The copy action into a remote deployment (issue 13): a rule on deployment A copies each
new value of its secrets into the same-named secret of a region served by deployment B,
which A reaches as any Secrets Manager endpoint, through the AWS SDK for Rust over TLS under
a private CA (`[[remotes]]`), as it would reach real AWS. Checked: the copy is created there
and then updated, a region that is down is caught up when it returns, no retry writes a
version twice, and both trails show their halves: A's read as events.amazonaws.com and its
delivery, B's writes as the access key A was given, from the Rust SDK."""

from __future__ import annotations

import json
import subprocess

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import arca_binary
from helpers import ACCESS_KEY, ACCOUNT_ID, SECRET_KEY, lookup_trail, wait_until
from pki import make_pki
from rotation_helpers import free_port, start_server, stop_server, toml_str

PRIMARY, REMOTE = "us-east-1", "eu-west-1"
COPY_ACTION = f"arn:arca:events:{REMOTE}:{ACCOUNT_ID}:action/copy-secret"
PATTERN = json.dumps({"source": ["aws.secretsmanager"],
                      "detail": {"eventName": ["CreateSecret", "PutSecretValue"],
                                 "requestParameters": {"name": [{"prefix": "app/"}]}}})
PATTERN_PUT = json.dumps({"source": ["aws.secretsmanager"],
                          "detail": {"eventName": ["PutSecretValue"],
                                     "requestParameters": {"secretId": [{"prefix": "app/"}]}}})


class Deployments:
    def __init__(self, base):
        (base / "pki").mkdir()
        self.pki = make_pki(base / "pki")
        self.b_dir, self.a_dir = base / "b", base / "a"
        self.b_dir.mkdir()
        self.a_dir.mkdir()
        subprocess.run([str(arca_binary()), "init-root-key", str(self.b_dir / "root.key")],
                       check=True, capture_output=True, timeout=60)
        self.b_port = free_port()
        tls = (f"[tls]\ncert_file = {toml_str(str(self.pki['cert']))}\n"
               f"key_file = {toml_str(str(self.pki['key']))}\n")
        self.b_config = tls
        secret_file = self.a_dir / "remote-secret"
        secret_file.write_text(SECRET_KEY + "\n")
        secret_file.chmod(0o600)
        rules = "".join(
            f"[[rules]]\nname = {toml_str(name)}\nregion = {toml_str(PRIMARY)}\n"
            f"pattern = {toml_str(pattern)}\n"
            f"[[rules.targets]]\nid = \"remote\"\narn = {toml_str(COPY_ACTION)}\n"
            f"max_age_secs = 600\n"
            for name, pattern in [("copy-created", PATTERN), ("copy-put", PATTERN_PUT)])
        self.a_config = (
            f"[[remotes]]\nname = \"site-b\"\nregion = {toml_str(REMOTE)}\n"
            f"endpoint = {toml_str(f'https://127.0.0.1:{self.b_port}')}\n"
            f"access_key_id = {toml_str(ACCESS_KEY)}\n"
            f"secret_access_key_file = {toml_str(str(secret_file))}\n"
            f"ca_file = {toml_str(str(self.pki['ca']))}\ntimeout_secs = 3\n" + rules)
        self.b = None
        self.start_b()
        self.a = start_server(self.a_dir, self.a_config)

    def start_b(self):
        self.b = start_server(self.b_dir, self.b_config, verify=str(self.pki["ca"]),
                              listen=f"127.0.0.1:{self.b_port}",
                              extra_args=["--database", str(self.b_dir / "arca.db"),
                                          "--root-key-file", str(self.b_dir / "root.key")])

    def stop_b(self):
        if self.b is not None:
            stop_server(self.b)
            self.b = None

    def client(self, site: str, service: str, region: str):
        endpoint, verify = ((self.a.endpoint, True) if site == "a"
                            else (f"https://127.0.0.1:{self.b_port}", str(self.pki["ca"])))
        return boto3.client(service, endpoint_url=endpoint, region_name=region, verify=verify,
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                            config=Config(retries={"max_attempts": 1}))

    def remote_value(self, name: str) -> str | None:
        try:
            return self.client("b", "secretsmanager", REMOTE).get_secret_value(
                SecretId=name)["SecretString"]
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ResourceNotFoundException", e
            return None

    def trail(self, site: str, region: str, **attr) -> list[dict]:
        return lookup_trail(self.client(site, "cloudtrail", region), **attr)


def settled(sites) -> bool:
    """Every delivery that failed once has since been delivered."""
    attempts = [r["additionalEventData"]
                for r in sites.trail("a", PRIMARY, EventName="InvokeTarget")]
    retried = {a["deliveryId"] for a in attempts if a["outcome"] == "WillRetry"}
    return retried <= {a["deliveryId"] for a in attempts if a["outcome"] == "Delivered"}


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    d = Deployments(tmp_path_factory.mktemp("remote-copy"))
    yield d
    stop_server(d.a)
    d.stop_b()


def test_values_are_copied_into_the_remote_deployment_through_the_sdk(sites):
    sm = sites.client("a", "secretsmanager", PRIMARY)
    sm.create_secret(Name="app/db", SecretString="first")
    wait_until(lambda: sites.remote_value("app/db") == "first", timeout=20,
               what="the copy created in the remote deployment")
    remote = sites.client("b", "secretsmanager", REMOTE).describe_secret(SecretId="app/db")
    assert remote["Description"] == f"Copied by Arca from {PRIMARY}"
    assert remote["ARN"].startswith(f"arn:aws:secretsmanager:{REMOTE}:")
    sm.put_secret_value(SecretId="app/db", SecretString="second")
    wait_until(lambda: sites.remote_value("app/db") == "second", timeout=20,
               what="the second copy")
    # Secrets outside the rule's prefix stay home.
    sm.create_secret(Name="other/db", SecretString="stays")
    sm.put_secret_value(SecretId="app/db", SecretString="third")
    wait_until(lambda: sites.remote_value("app/db") == "third", timeout=20, what="the third copy")
    assert sites.remote_value("other/db") is None
    # B recorded the writes as the key A holds, made by the Rust SDK.
    writes = [r for r in sites.trail("b", REMOTE, ResourceName="app/db")
              if r["eventName"] in ("CreateSecret", "PutSecretValue") and "errorCode" not in r]
    assert [r["eventName"] for r in writes] == ["CreateSecret", "PutSecretValue", "PutSecretValue"]
    for r in writes:
        assert r["userIdentity"]["accessKeyId"] == ACCESS_KEY
        assert "aws-sdk-rust" in r["userAgent"], r["userAgent"]
    # A recorded its reads as events.amazonaws.com, and each delivery.
    # (Reads reach the trail in a batch, moments later.)
    wait_until(lambda: len([r for r in sites.trail("a", PRIMARY, EventName="GetSecretValue")
                            if r["sourceIPAddress"] == "events.amazonaws.com"]) >= 3,
               timeout=10, what="the copy action's three reads in A's trail")
    invoked = [r["additionalEventData"] for r in sites.trail("a", PRIMARY, EventName="InvokeTarget")]
    assert [i["outcome"] for i in invoked].count("Delivered") >= 3
    # No value anywhere in either trail.
    for site, region in [("a", PRIMARY), ("b", REMOTE)]:
        text = json.dumps(sites.trail(site, region))
        for value in ("first", "second", "third"):
            assert f'"{value}"' not in text


def test_a_remote_that_is_down_is_caught_up_without_duplicate_versions(sites):
    sm = sites.client("a", "secretsmanager", PRIMARY)
    sm.create_secret(Name="app/cache", SecretString="v1")
    wait_until(lambda: sites.remote_value("app/cache") == "v1", timeout=20, what="the first copy")
    sites.stop_b()
    sm.put_secret_value(SecretId="app/cache", SecretString="v2")
    sm.put_secret_value(SecretId="app/cache", SecretString="v3")
    # The deliveries fail meanwhile, and are retried with backoff.
    wait_until(lambda: any(r["additionalEventData"]["outcome"] == "WillRetry"
                           for r in sites.trail("a", PRIMARY, EventName="InvokeTarget")),
               timeout=30, what="a failed delivery to the remote")
    sites.start_b()
    wait_until(lambda: sites.remote_value("app/cache") == "v3", timeout=60,
               what="the remote caught up")
    # Both owed deliveries read the current value, v3, and wrote it with the token of
    # that source version: one version there, not two; v2 was never current when a
    # delivery read.
    wait_until(lambda: settled(sites), timeout=60, what="every retried delivery done")
    remote = sites.client("b", "secretsmanager", REMOTE)
    versions = remote.list_secret_version_ids(SecretId="app/cache", IncludeDeprecated=True)
    assert len(versions["Versions"]) == 2, versions["Versions"]
    previous = remote.get_secret_value(SecretId="app/cache", VersionStage="AWSPREVIOUS")
    assert previous["SecretString"] == "v1"
