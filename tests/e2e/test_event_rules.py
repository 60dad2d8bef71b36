"""Event rules and their targets (issue 13), through real clients against the binary:
EventBridge's rule API with boto3 and the aws CLI; the seed article's scenario (a rotation's
RotationSucceeded event copies the new value into a backup region) with the built-in copy
action, with a webhook that does the copy itself, and with a boto3 Lambda handler run as a
local command; dead letters and their replay; refused calls as events; and a fault test:
the server killed with SIGKILL while a delivery is in flight and while one is still owed,
after which every matched event reaches its target exactly once by its idempotency key."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import arca_binary
from helpers import ACCESS_KEY, ACCOUNT_ID, SECRET_KEY, lookup_trail, token, wait_until
from rotation_helpers import (fn_arn, make_sm, shim_argv, signed_by_arca, start_server,
                              stop_server, toml_function, write_hmac_secret)

GENERIC = fn_arn("arca-e2e-generic")
HOOK = fn_arn("arca-e2e-event-hook")
COPY_CMD = fn_arn("arca-e2e-copy-command")
PRIMARY, BACKUP = "us-east-1", "us-west-2"
COPY_ACTION = f"arn:arca:events:{BACKUP}:{ACCOUNT_ID}:action/copy-secret"


class Hook:
    """A webhook target: checks Arca's signature, records each delivery (its idempotency
    key and event), and answers as told: 200, 500 (`failing`), or not at all until
    released (`hold`). With `copy`, it copies the event's secret to the backup region
    itself, once per idempotency key, as a receiver that deduplicates would."""

    def __init__(self, secret: bytes):
        self.secret = secret
        self.lock = threading.Lock()
        self.deliveries: list[tuple[str, dict]] = []
        self.bad_signatures = 0
        self.failing = False
        self.hold = threading.Event()
        self.holding = False
        self.held = threading.Event()
        self.copy_endpoint: str | None = None
        self.copied: set[str] = set()
        hook = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not signed_by_arca(hook.secret, self.headers, body):
                    with hook.lock:
                        hook.bad_signatures += 1
                    return self._answer(401)
                key = self.headers.get("X-Arca-Delivery-Id", "")
                event = json.loads(body)
                with hook.lock:
                    hook.deliveries.append((key, event))
                    hold = hook.holding
                if hold:
                    hook.held.set()
                    hook.hold.wait(30)
                    return
                if hook.failing:
                    return self._answer(500)
                if hook.copy_endpoint and key not in hook.copied:
                    copy_to_backup(hook.copy_endpoint, event)
                    hook.copied.add(key)
                self._answer(200)

            def _answer(self, status):
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/events"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def keys(self) -> list[str]:
        with self.lock:
            return [k for k, _ in self.deliveries]

    def events(self) -> list[dict]:
        with self.lock:
            return [e for _, e in self.deliveries]

    def close(self):
        self.hold.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def copy_to_backup(endpoint: str, event: dict) -> None:
    arn = event["detail"]["additionalEventData"]["SecretId"]
    current = make_sm(endpoint, region=event["region"]).get_secret_value(SecretId=arn)
    backup = make_sm(endpoint, region=BACKUP)
    try:
        backup.put_secret_value(SecretId=current["Name"], SecretString=current["SecretString"])
    except backup.exceptions.ResourceNotFoundException:
        backup.create_secret(Name=current["Name"], SecretString=current["SecretString"])


@pytest.fixture(scope="module")
def hook(tmp_path_factory):
    d = tmp_path_factory.mktemp("hook")
    h = Hook(write_hmac_secret(d / "hmac.key"))
    h.key_file = d / "hmac.key"
    yield h
    h.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory, hook):
    """One deployment on a database that outlives its process (for the kill -9 test)."""
    work = tmp_path_factory.mktemp("arca-events")
    env = {
        "ARCA_DATABASE": str(work / "arca.db"),
        "ARCA_ROOT_KEY": base64.b64encode(os.urandom(32)).decode(),
        "E2E_BACKUP_REGION": BACKUP,
    }
    config = (toml_function(GENERIC, type="builtin", kind="generic")
              + toml_function(HOOK, type="http", url=hook.url,
                              hmac_secret_file=str(hook.key_file), timeout_secs=10)
              + toml_function(COPY_CMD, type="command",
                              argv=shim_argv("copy_to_backup.lambda_handler"), timeout_secs=30))

    class Site:
        def __init__(self):
            self.work, self.env, self.config = work, env, config
            self.srv = start_server(work, config, extra_env=env)

        @property
        def endpoint(self):
            return self.srv.endpoint

        def restart(self, kill: bool):
            if kill:
                self.srv.proc.kill()
                self.srv.proc.wait(timeout=10)
            else:
                stop_server(self.srv)
            self.srv = start_server(self.work, self.config, extra_env=self.env)
            hook.copy_endpoint = hook.copy_endpoint and self.endpoint

        def cli(self, *args: str) -> str:
            e = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARCA_"))}
            e.update(self.env)
            out = subprocess.run([str(arca_binary()), *args], env=e, capture_output=True,
                                 text=True, timeout=30)
            assert out.returncode == 0, out.stdout + out.stderr
            return out.stdout

    s = Site()
    yield s
    stop_server(s.srv)


def client(site, service: str, region: str = PRIMARY):
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=region,
    ).client(service, endpoint_url=site.endpoint,
             config=Config(retries={"max_attempts": 1}, read_timeout=30))


def rotation_rule(events, name: str, arn: str, target: dict) -> None:
    pattern = {
        "source": ["aws.secretsmanager"],
        "detail-type": ["AWS Service Event via CloudTrail"],
        "detail": {"eventName": ["RotationSucceeded"],
                   "additionalEventData": {"SecretId": [arn]}},
    }
    events.put_rule(Name=name, EventPattern=json.dumps(pattern))
    out = events.put_targets(Rule=name, Targets=[target])
    assert out["FailedEntryCount"] == 0, out


def seed(site, name: str, rule: str, target: dict):
    """The seed's setup: a secret, a rule on its RotationSucceeded with `target`, one
    rotation. Returns the clients, the ARN and the rotated value."""
    sm, ev = client(site, "secretsmanager"), client(site, "events")
    arn = sm.create_secret(Name=name, SecretString='{"password": "first"}')["ARN"]
    rotation_rule(ev, rule, arn, target)
    return sm, arn, rotate(sm, arn)


def rotate(sm, arn: str) -> str:
    tok = token()
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=GENERIC, ClientRequestToken=tok,
                     RotateImmediately=True)
    wait_until(lambda: "AWSCURRENT" in sm.describe_secret(SecretId=arn)
               ["VersionIdsToStages"].get(tok, []), timeout=20, what="the rotation")
    return sm.get_secret_value(SecretId=arn)["SecretString"]


def backup_value(site, name: str) -> str | None:
    try:
        return client(site, "secretsmanager", BACKUP).get_secret_value(SecretId=name)["SecretString"]
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ResourceNotFoundException", e
        return None


def trail(site, region: str, **attr) -> list[dict]:
    return lookup_trail(client(site, "cloudtrail", region), **attr)


# ---------- the rule API ----------

def test_rule_api_with_boto3(site):
    ev = client(site, "events")
    pattern = json.dumps({"source": ["aws.secretsmanager"]})
    arn = ev.put_rule(Name="api-rule", EventPattern=pattern, Description="d")["RuleArn"]
    assert arn == f"arn:aws:events:{PRIMARY}:{ACCOUNT_ID}:rule/api-rule"
    d = ev.describe_rule(Name="api-rule")
    assert (d["Name"], d["State"], d["EventPattern"], d["EventBusName"], d["Description"]) == (
        "api-rule", "ENABLED", pattern, "default", "d")
    ev.disable_rule(Name="api-rule")
    assert ev.describe_rule(Name="api-rule")["State"] == "DISABLED"
    ev.enable_rule(Name="api-rule")
    for i in range(3):
        ev.put_rule(Name=f"api-page-{i}", EventPattern=pattern)
    page = ev.list_rules(NamePrefix="api-page-", Limit=2)
    assert [r["Name"] for r in page["Rules"]] == ["api-page-0", "api-page-1"]
    rest = ev.list_rules(NamePrefix="api-page-", Limit=2, NextToken=page["NextToken"])
    assert [r["Name"] for r in rest["Rules"]] == ["api-page-2"] and "NextToken" not in rest
    # Another region's bus has its own rules.
    assert client(site, "events", BACKUP).list_rules(NamePrefix="api-")["Rules"] == []

    out = ev.put_targets(Rule="api-rule", Targets=[
        {"Id": "hook", "Arn": HOOK, "RetryPolicy": {"MaximumRetryAttempts": 3}},
        {"Id": "copy", "Arn": COPY_ACTION + "/alias/backup"},
        {"Id": "sqs", "Arn": f"arn:aws:sqs:{PRIMARY}:{ACCOUNT_ID}:q"},
    ])
    assert out["FailedEntryCount"] == 1 and out["FailedEntries"][0]["TargetId"] == "sqs"
    targets = ev.list_targets_by_rule(Rule="api-rule")["Targets"]
    assert [(t["Id"], t["Arn"]) for t in targets] == [
        ("copy", COPY_ACTION + "/alias/backup"), ("hook", HOOK)]
    assert targets[1]["RetryPolicy"]["MaximumRetryAttempts"] == 3

    def code(f, **kw):
        with pytest.raises(ClientError) as e:
            f(**kw)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    assert code(ev.delete_rule, Name="api-rule") == (
        "ValidationException", "Rule can't be deleted since it has targets.")
    assert code(ev.describe_rule, Name="nope") == (
        "ResourceNotFoundException", "Rule nope does not exist on EventBus default.")
    assert code(ev.put_targets, Rule="nope", Targets=[{"Id": "a", "Arn": HOOK}])[0] == \
        "ResourceNotFoundException"
    assert code(ev.put_rule, Name="bad", EventPattern='{"source": "not-a-list"}')[0] == \
        "InvalidEventPatternException"
    assert code(ev.put_rule, Name="bad")[0] == "ValidationException"
    assert code(ev.describe_rule, Name="api-rule", EventBusName="other")[0] == \
        "ResourceNotFoundException"
    ev.remove_targets(Rule="api-rule", Ids=["hook", "copy"])
    ev.delete_rule(Name="api-rule")
    ev.delete_rule(Name="api-rule")  # AWS answers a missing rule with success too
    for i in range(3):
        ev.delete_rule(Name=f"api-page-{i}")
    assert ev.list_rules(NamePrefix="api-")["Rules"] == []


def test_rule_api_with_the_aws_cli(site, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_DEFAULT_REGION=PRIMARY, AWS_CONFIG_FILE=str(tmp_path / "none"))

    def aws(*args):
        out = subprocess.run(["aws", "--endpoint-url", site.endpoint, "--output", "json",
                              "events", *args], env=env, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else None

    aws("put-rule", "--name", "cli-rule", "--event-pattern", '{"source":["aws.secretsmanager"]}')
    aws("put-targets", "--rule", "cli-rule", "--targets", f"Id=h,Arn={HOOK}")
    assert aws("list-targets-by-rule", "--rule", "cli-rule")["Targets"][0]["Id"] == "h"
    assert [r["Name"] for r in aws("list-rules", "--name-prefix", "cli-")["Rules"]] == ["cli-rule"]
    aws("remove-targets", "--rule", "cli-rule", "--ids", "h")
    aws("delete-rule", "--name", "cli-rule")
    assert aws("list-rules", "--name-prefix", "cli-")["Rules"] == []


# ---------- the seed's scenario, three ways ----------

def test_rotation_copies_to_the_backup_region_with_the_built_in_action(site):
    sm, arn, new = seed(site, "seed/builtin", "seed-builtin", {"Id": "copy", "Arn": COPY_ACTION})
    wait_until(lambda: backup_value(site, "seed/builtin") == new, timeout=20,
               what="the copy in the backup region")
    # A second rotation updates the copy that now exists.
    newer = rotate(sm, arn)
    assert newer != new
    wait_until(lambda: backup_value(site, "seed/builtin") == newer, timeout=20,
               what="the second copy")
    backup = client(site, "secretsmanager", BACKUP).describe_secret(SecretId="seed/builtin")
    assert len(backup["VersionIdsToStages"]) == 2
    # The whole chain is in the trail: the rotation, its event's deliveries, the reads
    # and writes the action made as events.amazonaws.com.
    chain = [(r["eventSource"], r["eventName"]) for r in trail(site, PRIMARY)
             if arn in json.dumps(r) or "seed-builtin" in json.dumps(r)]
    for step in [("secretsmanager.amazonaws.com", "RotateSecret"),
                 ("secretsmanager.amazonaws.com", "RotationStarted"),
                 ("secretsmanager.amazonaws.com", "RotationSucceeded"),
                 ("events.amazonaws.com", "InvokeTarget"),
                 ("secretsmanager.amazonaws.com", "GetSecretValue")]:
        assert step in chain, (step, chain)
    assert chain.index(("secretsmanager.amazonaws.com", "RotationSucceeded")) < \
        chain.index(("events.amazonaws.com", "InvokeTarget"))
    invoked = [r for r in trail(site, PRIMARY, EventName="InvokeTarget")
               if r["additionalEventData"]["ruleArn"].endswith("/seed-builtin")]
    assert [r["additionalEventData"]["outcome"] for r in invoked] == ["Delivered", "Delivered"]
    # In the backup region: the first copy's put found nothing and created the secret,
    # the second put a new version, all as events.amazonaws.com.
    by_action = [r for r in trail(site, BACKUP, ResourceName="seed/builtin")
                 if r["sourceIPAddress"] == "events.amazonaws.com"]
    calls = sorted((r["eventName"], r.get("errorCode") or "") for r in by_action)
    assert calls == [("CreateSecret", ""), ("PutSecretValue", ""),
                     ("PutSecretValue", "ResourceNotFoundException")], calls
    for r in by_action:
        assert "first" not in json.dumps(r) and new not in json.dumps(r)


def test_rotation_copies_to_the_backup_region_through_a_webhook(site, hook):
    hook.copy_endpoint = site.endpoint
    try:
        _, arn, new = seed(site, "seed/webhook", "seed-webhook", {"Id": "hook", "Arn": HOOK})
        wait_until(lambda: backup_value(site, "seed/webhook") == new, timeout=20,
                   what="the webhook's copy")
    finally:
        hook.copy_endpoint = None
    got = [e for e in hook.events() if e["detail"].get("additionalEventData", {})
           .get("SecretId") == arn]
    assert len(got) == 1
    e = got[0]
    assert (e["version"], e["source"], e["detail-type"], e["account"], e["region"]) == (
        "0", "aws.secretsmanager", "AWS Service Event via CloudTrail", ACCOUNT_ID, PRIMARY)
    assert e["resources"] == [arn] and e["detail"]["eventName"] == "RotationSucceeded"
    assert new not in json.dumps(e) and "first" not in json.dumps(e)
    assert hook.bad_signatures == 0


def test_rotation_copies_to_the_backup_region_through_a_boto3_command(site):
    sm, arn, new = seed(site, "seed/command", "seed-command", {"Id": "cmd", "Arn": COPY_CMD})
    wait_until(lambda: backup_value(site, "seed/command") == new, timeout=30,
               what="the command's copy")
    # The handler signed with the short-lived key Arca gave it, not ours.
    writes = trail(site, BACKUP, ResourceName="seed/command")
    created = [r for r in writes if r["eventName"] == "CreateSecret" and not r.get("errorCode")]
    assert len(created) == 1, writes
    assert created[0]["userIdentity"]["accessKeyId"] not in (ACCESS_KEY, None)


# ---------- delivery semantics ----------

def test_a_failing_target_is_retried_then_dead_lettered_and_replayed(site, hook):
    sm, ev = client(site, "secretsmanager"), client(site, "events")
    pattern = {"source": ["aws.secretsmanager"], "detail-type": ["AWS API Call via CloudTrail"],
               "detail": {"eventName": ["TagResource"],
                          "requestParameters": {"secretId": ["dead/letter"]}}}
    ev.put_rule(Name="dead-letter", EventPattern=json.dumps(pattern))
    ev.put_targets(Rule="dead-letter", Targets=[
        {"Id": "hook", "Arn": HOOK, "RetryPolicy": {"MaximumRetryAttempts": 1}}])
    sm.create_secret(Name="dead/letter", SecretString="v")
    hook.failing = True
    try:
        before = len(hook.keys())
        sm.tag_resource(SecretId="dead/letter", Tags=[{"Key": "k", "Value": "v"}])
        wait_until(lambda: any(d["rule"] == "dead-letter" for d in map(
            json.loads, site.cli("rules", "dead-letters").splitlines())), timeout=20,
            what="the dead letter")
        keys = hook.keys()[before:]
        assert len(keys) == 2 and keys[0] == keys[1], "one retry, with the same key"
        dead = [json.loads(l) for l in site.cli("rules", "dead-letters").splitlines()]
        dead = [d for d in dead if d["rule"] == "dead-letter"]
        assert dead[0]["attempts"] == 2 and "HTTP 500" in dead[0]["lastError"]
        assert dead[0]["event"]["detail"]["eventName"] == "TagResource"
    finally:
        hook.failing = False
    site.cli("rules", "replay", str(dead[0]["id"]))
    wait_until(lambda: len(hook.keys()) == before + 3, timeout=20, what="the replay")
    assert hook.keys()[-1] == keys[0]
    assert not [l for l in site.cli("rules", "dead-letters").splitlines()
                if json.loads(l)["rule"] == "dead-letter"]
    outcomes = [r["additionalEventData"]["outcome"]
                for r in trail(site, PRIMARY, EventName="InvokeTarget")
                if r["additionalEventData"]["ruleArn"].endswith("/dead-letter")]
    assert outcomes == ["WillRetry", "DeadLettered", "Delivered"], outcomes


def test_refused_calls_are_events_and_deliveries_keep_their_order(site, hook):
    sm, ev = client(site, "secretsmanager"), client(site, "events")
    pattern = {"source": ["aws.secretsmanager"],
               "detail": {"requestParameters": {"secretId": [{"prefix": "ordered/"}]}}}
    ev.put_rule(Name="ordered", EventPattern=json.dumps(pattern))
    ev.put_targets(Rule="ordered", Targets=[{"Id": "hook", "Arn": HOOK}])
    before = len(hook.events())
    sm.create_secret(Name="ordered/a", SecretString="v0")
    for i in range(5):
        sm.put_secret_value(SecretId="ordered/a", SecretString=f"v{i + 1}")
    with pytest.raises(ClientError):
        sm.put_secret_value(SecretId="ordered/missing", SecretString="x")
    sm.get_secret_value(SecretId="ordered/a")  # a read: not an event for an ENABLED rule
    wait_until(lambda: len(hook.events()) >= before + 6, timeout=20, what="deliveries")
    time.sleep(1)
    got = hook.events()[before:]
    names = [(e["detail"]["eventName"], e["detail"].get("errorCode")) for e in got]
    assert names[:5] == [("PutSecretValue", None)] * 5, names
    assert ("PutSecretValue", "ResourceNotFoundException") in names
    assert all(n != "GetSecretValue" for n, _ in names)
    times = [e["time"] for e in got[:5]]
    assert times == sorted(times)
    for e in got:
        assert "v3" not in json.dumps(e["detail"].get("requestParameters"))
    ev.remove_targets(Rule="ordered", Ids=["hook"])
    ev.delete_rule(Name="ordered")


def test_kill_9_between_the_write_and_its_delivery_loses_nothing(site, hook):
    sm, ev = client(site, "secretsmanager"), client(site, "events")
    pattern = {"source": ["aws.secretsmanager"],
               "detail": {"eventName": ["PutSecretValue"],
                          "requestParameters": {"secretId": ["fault/a"]}}}
    ev.put_rule(Name="fault", EventPattern=json.dumps(pattern))
    ev.put_targets(Rule="fault", Targets=[{"Id": "hook", "Arn": HOOK}])
    sm.create_secret(Name="fault/a", SecretString="v0")
    before = len(hook.keys())
    # 1. The server dies while the target holds the first delivery (it got it, we never
    #    heard back): after the restart it is delivered again, with the same key.
    hook.holding = True
    sm.put_secret_value(SecretId="fault/a", SecretString="v1")
    assert hook.held.wait(20), "the delivery reached the target"
    site.restart(kill=True)
    hook.holding = False
    hook.hold.set()
    # 2. A write acknowledged while the target is down, then the server dies before any
    #    attempt succeeds.
    hook.failing = True
    sm = client(site, "secretsmanager")
    sm.put_secret_value(SecretId="fault/a", SecretString="v2")
    site.restart(kill=True)
    hook.failing = False
    sm = client(site, "secretsmanager")
    sm.put_secret_value(SecretId="fault/a", SecretString="v3")

    def unique():
        return list(dict.fromkeys(hook.keys()[before:]))

    wait_until(lambda: len(unique()) == 3, timeout=40, what="three events delivered")
    time.sleep(1.5)
    keys = unique()
    assert len(keys) == 3, keys
    got = {}
    for k, e in zip(hook.keys()[before:], hook.events()[before:]):
        got.setdefault(k, e)
    # One event per acknowledged write, each a distinct call; the one in flight at the
    # kill came again under the same key (so a deduplicating target acts once).
    assert len({e["detail"]["requestID"] for e in got.values()}) == 3
    assert len(hook.keys()[before:]) >= 4, hook.keys()[before:]
    assert not [l for l in site.cli("rules", "pending").splitlines()
                if json.loads(l)["rule"] == "fault"]
    ev = client(site, "events")
    ev.remove_targets(Rule="fault", Ids=["hook"])
    ev.delete_rule(Name="fault")


def test_events_cli_reads_the_trail(site):
    sm = client(site, "secretsmanager")
    arn = sm.create_secret(Name="events/cli", SecretString="v")["ARN"]
    sm.delete_secret(SecretId=arn, RecoveryWindowInDays=7)
    sm.restore_secret(SecretId=arn)
    short = [json.loads(l) for l in site.cli("events", "--secret", arn).splitlines()]
    assert [e["name"] for e in short] == ["StartSecretVersionDelete", "CancelSecretVersionDelete"]
    assert all(e["secretArn"] == arn for e in short)
    envelopes = [json.loads(l) for l in
                 site.cli("events", "--eventbridge", "--secret", arn).splitlines()]
    assert [(e["detail-type"], e["detail"]["eventName"]) for e in envelopes] == [
        ("AWS API Call via CloudTrail", "CreateSecret"),
        ("AWS API Call via CloudTrail", "DeleteSecret"),
        ("AWS Service Event via CloudTrail", "StartSecretVersionDelete"),
        ("AWS API Call via CloudTrail", "RestoreSecret"),
        ("AWS Service Event via CloudTrail", "CancelSecretVersionDelete"),
    ]
    after = [json.loads(l) for l in site.cli(
        "events", "--secret", arn, "--after", str(short[0]["id"])).splitlines()]
    assert after == short[1:]


def test_replication_is_told_by_service_events(site):
    sm = client(site, "secretsmanager")
    arn = sm.create_secret(Name="events/replicated", SecretString="v",
                           AddReplicaRegions=[{"Region": "eu-west-1"}])["ARN"]

    def names():
        return [json.loads(l)["name"] for l in site.cli("events", "--secret", arn).splitlines()]

    wait_until(lambda: "ReplicationSucceeded" in names(), timeout=20, what="ReplicationSucceeded")
    sm.replicate_secret_to_regions(SecretId=arn, AddReplicaRegions=[{"Region": "ap-south-1"}])
    wait_until(lambda: names().count("ReplicationSucceeded") == 2, timeout=20,
               what="the second region in sync")
    evs = [json.loads(l) for l in site.cli("events", "--secret", arn).splitlines()]
    assert [(e["name"], e["detail"]["replicaRegion"]) for e in evs] == [
        ("ReplicationStarted", "eu-west-1"), ("ReplicationSucceeded", "eu-west-1"),
        ("ReplicationStarted", "ap-south-1"), ("ReplicationSucceeded", "ap-south-1")]
    sm.remove_regions_from_replication(SecretId=arn, RemoveReplicaRegions=["eu-west-1", "ap-south-1"])
