"""Three nodes on one PostgreSQL, under a mixed load from real clients, while nodes are
killed with `kill -9` and restarted at random moments and PostgreSQL itself restarts once.

Afterwards: every acknowledged write is there with the right labels; no idempotent write
(a PutSecretValue retried with its ClientRequestToken on another node) was applied twice;
no rotation ran twice or on two nodes at once (the rotation function's own log counts),
neither one started by RotateSecret nor one that came due on its schedule;
and every read that began more than the stated delay after a write was acknowledged
returned that write or a newer one. The stated delay is two change-feed heartbeats (2 s):
the longest a node may take to notice that its feed stalled silently. Notices themselves
arrive within milliseconds.

Scheduled rotations come due by the service clock: the nodes run with `--dev` (on the
shared database and a fixed root key, as any node) so that the test can move every node's
clock forward by the same amount (a restarted node is moved again as it comes back).

Needs the local PostgreSQL and the right to restart it (`pg_ctlcluster`, as `.ci/run`
has); it runs in the normal suite, on a schema of its own.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REPO, _drain, arca_binary, drop_postgres_schema, postgres_schema
from helpers import ACCESS_KEY, SECRET_KEY, wait_until

LISTEN_RE = re.compile(r"arca: listening on (\S+:\d+)")
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:multinode-rotation"
DELAY = 2.0  # the stated bound: two change-feed heartbeats
CHAOS_SECONDS = 24.0
WRITERS = 6
READERS = 6
ROTATED = 4
SCHEDULED = 3
DAY = 86400
CLOCK_SKEW_SECS = 30


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_cluster() -> str | None:
    etc = Path("/etc/postgresql")
    if not etc.is_dir() or not any(etc.iterdir()):
        return None
    if subprocess.run(["which", "pg_ctlcluster"], capture_output=True).returncode != 0:
        return None
    return sorted(p.name for p in etc.iterdir())[-1]


def restart_postgres(version: str) -> None:
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                   check=True, capture_output=True, timeout=120)


class Node:
    """One arca server on the shared database, always on the same port."""

    def __init__(self, name: str, env: dict, config: Path):
        self.name = name
        self.env = env
        self.config = config
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.log: list[str] = []
        self.lock = threading.Lock()
        # Seconds every node's service clock is ahead; a node starts that far ahead.
        self.clock_offset = 0

    def start(self, timeout: float = 60.0) -> None:
        """Starts the node; retries while it cannot (the database may be restarting)."""
        deadline = time.monotonic() + timeout
        while True:
            self.log = []
            # A restarted node starts on the others' time: were it behind them even for a
            # moment, it would find the attempts they lease expired, by its own clock.
            env = dict(self.env, ARCA_DEV_CLOCK_OFFSET_SECS=str(self.clock_offset))
            proc = subprocess.Popen(
                [str(arca_binary()), "server", "--dev", "--config", str(self.config),
                 "--listen", f"127.0.0.1:{self.port}"],
                env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT)
            lines: "queue.Queue[str | None]" = queue.Queue()
            threading.Thread(target=_drain, args=(proc.stdout, self.log, lines), daemon=True).start()
            while True:
                try:
                    line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    line = None
                if line is None:
                    break
                if LISTEN_RE.search(line):
                    with self.lock:
                        self.proc = proc
                    return
            proc.kill()
            proc.wait(timeout=10)
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start:\n" + "\n".join(self.log[-30:]))
            time.sleep(0.5)

    def post_advance(self, seconds: int) -> None:
        r = requests.post(f"{self.endpoint}/_arca/dev/advance-clock",
                          params={"seconds": str(seconds)}, timeout=10)
        assert r.status_code < 300, f"{self.name}: advance-clock {r.status_code} {r.text}"

    def kill9(self) -> None:
        with self.lock:
            proc, self.proc = self.proc, None
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def up(self) -> bool:
        with self.lock:
            return self.proc is not None and self.proc.poll() is None


_clients: dict = {}
_clients_lock = threading.Lock()


def advance_clocks(nodes: list[Node], seconds: int) -> None:
    """Moves every node's service clock forward; a node down now starts that far ahead."""
    for n in nodes:
        n.clock_offset += seconds
        if n.up():
            n.post_advance(seconds)


def succeeded(nodes: list[Node], arn: str, test_only: bool = False) -> int:
    """RotationSucceeded events of a secret in the trail: rotations, or configuration tests
    (RotateImmediately=False)."""
    events = subprocess.run([str(arca_binary()), "events", "--secret", arn],
                            env=nodes[0].env, capture_output=True, text=True, timeout=60)
    assert events.returncode == 0, events.stderr
    found = [json.loads(l) for l in events.stdout.splitlines() if l.strip()]
    return sum(1 for e in found if e.get("name") == "RotationSucceeded"
               and bool((e.get("detail") or {}).get("testOnly")) == test_only)


def client(node: Node):
    key = (node.endpoint, threading.get_ident())
    with _clients_lock:
        c = _clients.get(key)
    if c is None:
        c = boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="us-east-1"
        ).client("secretsmanager", endpoint_url=node.endpoint,
                 config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10))
        with _clients_lock:
            _clients[key] = c
    return c


def counter_of(value: str) -> int:
    return int(value.rsplit("#", 1)[1])


@pytest.fixture
def cluster(tmp_path):
    version = _pg_cluster()
    if version is None:
        pytest.skip("needs the local PostgreSQL and pg_ctlcluster to restart it")
    schema, url = postgres_schema()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARCA_"))}
    env["ARCA_ROOT_KEY"] = base64.b64encode(os.urandom(32)).decode()
    env["ARCA_DATABASE"] = url
    env["ARCA_ACCESS_KEY_ID"] = ACCESS_KEY
    env["ARCA_SECRET_ACCESS_KEY"] = SECRET_KEY
    env.setdefault("RUST_LOG", "warn")
    counts = tmp_path / "counts"
    counts.mkdir()
    env["E2E_COUNT_DIR"] = str(counts)
    argv = [sys.executable, str(REPO / "contrib" / "lambda_shim.py"),
            "counting_rotation.lambda_handler", "--path", str(REPO / "tests" / "e2e" / "handlers")]
    config = tmp_path / "arca.toml"
    config.write_text(
        "[[rotation_functions]]\n"
        f"arn = {json.dumps(FUNCTION_ARN)}\n"
        'type = "command"\n'
        f"argv = {json.dumps(argv)}\n"
        "timeout_secs = 5\n")
    # An attempt whose node dies is taken over after 8 s (rather than 15 minutes), so the
    # takeover happens within the test.
    config.write_text("rotation_attempt_lease_secs = 8\n" + config.read_text())
    nodes = [Node(f"node{i}", env, config) for i in range(3)]
    # One node's clock runs ahead of the others' by far more than an attempt's lease: an
    # attempt's lease is judged by the database's clock, so it still never takes over an
    # attempt another node holds.
    nodes[2].clock_offset = CLOCK_SKEW_SECS
    try:
        for n in nodes:
            n.start()
        yield nodes, counts, version
    finally:
        for n in nodes:
            n.kill9()
        # The database must be up to drop the schema (it was restarted once).
        wait_until(lambda: subprocess.run(["pg_isready", "-h", "127.0.0.1"],
                                          capture_output=True).returncode == 0,
                   timeout=60, what="PostgreSQL back")
        drop_postgres_schema(schema)


def test_three_nodes_survive_kills_and_a_database_restart(cluster):
    nodes, counts, pg_version = cluster
    sm = client(nodes[0])
    names = [f"multi/w{i}" for i in range(WRITERS)]
    for n in names:
        sm.create_secret(Name=n, SecretString=f"{n}#0")
    rotated = []
    for i in range(ROTATED):
        arn = sm.create_secret(Name=f"multi/r{i}", SecretString="initial")["ARN"]
        rotated.append(arn)
    # Scheduled: daily, first configured with RotateImmediately=False (testSecret alone).
    scheduled = []
    for i in range(SCHEDULED):
        arn = sm.create_secret(Name=f"multi/s{i}", SecretString="initial")["ARN"]
        sm.rotate_secret(SecretId=arn, RotationLambdaARN=FUNCTION_ARN,
                         RotationRules={"AutomaticallyAfterDays": 1}, RotateImmediately=False)
        scheduled.append(arn)
    # The schedule counts from when that test ended, so it must end before clocks move.
    wait_until(lambda: all(succeeded(nodes, arn, test_only=True) == 1 for arn in scheduled),
               timeout=60, interval=0.5, what="the scheduled secrets' configuration tests")

    stop = threading.Event()
    acked: dict[str, list[tuple[int, str, float]]] = {n: [] for n in names}
    acked_lock = threading.Lock()
    unexpected: list[str] = []
    stale: list[str] = []
    reads_checked = [0]

    def any_call(fn, start: int, give_up: float):
        """Calls fn(client) on the nodes in turn from `start` until one answers, or gives up.
        Only the failures a failover may cause are retried; any other error is a finding."""
        i = start
        while time.monotonic() < give_up:
            node = nodes[i % len(nodes)]
            i += 1
            if not node.up():
                time.sleep(0.05)
                continue
            try:
                return fn(client(node))
            except ClientError as e:
                code = e.response["Error"]["Code"]
                status = e.response["ResponseMetadata"]["HTTPStatusCode"]
                if code != "InternalServiceError" or status < 500:
                    unexpected.append(f"{code} ({status}): {e}")
                    return None
                time.sleep(0.1)
            except Exception:  # noqa: BLE001 - a node killed mid-request
                time.sleep(0.05)
        return None

    def writer(name: str) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            value = f"{name}#{i}"
            token = str(uuid.uuid4())
            # The same token on every node it is retried on: applied once, whatever happens.
            r = any_call(lambda c: c.put_secret_value(SecretId=name, SecretString=value,
                                                      ClientRequestToken=token),
                         start=i, give_up=time.monotonic() + 90)
            if r is None:
                return
            if r["VersionId"] != token:
                unexpected.append(f"{name}: wrote {r['VersionId']} for token {token}")
            with acked_lock:
                acked[name].append((i, token, time.monotonic()))
            if i >= 80:  # stay under the 100-version limit, so every version is checkable
                return

    def reader(seed: int) -> None:
        rnd = random.Random(seed)
        while not stop.is_set():
            name = rnd.choice(names)
            node = rnd.choice(nodes)
            if not node.up():
                time.sleep(0.05)
                continue
            began = time.monotonic()
            with acked_lock:
                settled = [a for a in acked[name] if a[2] <= began - DELAY]
            floor = settled[-1][0] if settled else 0
            try:
                got = client(node).get_secret_value(SecretId=name)["SecretString"]
            except Exception:  # noqa: BLE001 - killed node, database restarting
                continue
            reads_checked[0] += 1
            if counter_of(got) < floor:
                stale.append(f"{node.name} served {got} at +{began:.3f}; write #{floor} was "
                             f"acknowledged at least {DELAY}s before")

    def rotate(arn: str) -> None:
        # A call cut off by a kill or the database restart may have committed: once one
        # has failed so, a retry that finds the rotation started is that call's success.
        tries = [0]

        def call(c):
            tries[0] += 1
            try:
                return c.rotate_secret(SecretId=arn, RotationLambdaARN=FUNCTION_ARN,
                                       RotationRules={"AutomaticallyAfterDays": 30})
            except ClientError as e:
                if tries[0] > 1 and "previous rotation isn't complete" in str(e):
                    return {}
                raise

        any_call(call, start=random.randrange(3), give_up=time.monotonic() + 60)

    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in names]
    threads += [threading.Thread(target=reader, args=(s,), daemon=True) for s in range(READERS)]
    for t in threads:
        t.start()

    rnd = random.Random()
    began = time.monotonic()
    pg_restarted = False
    kills = 0
    pending_rotations = list(rotated)
    # Every scheduled rotation comes due on every node at once, as the chaos begins. The
    # clocks move before any attempt runs: nodes briefly on different times would judge
    # each other's attempt leases by their own clocks.
    advance_clocks(nodes, 2 * DAY)
    while time.monotonic() - began < CHAOS_SECONDS:
        time.sleep(rnd.uniform(1.0, 2.5))
        if pending_rotations:
            threading.Thread(target=rotate, args=(pending_rotations.pop(),), daemon=True).start()
        if not pg_restarted and time.monotonic() - began > CHAOS_SECONDS / 2:
            restart_postgres(pg_version)
            pg_restarted = True
            continue
        victim = rnd.choice(nodes)
        victim.kill9()
        kills += 1
        time.sleep(rnd.uniform(0.2, 1.5))
        victim.start()
    stop.set()
    for t in threads:
        t.join(timeout=120)
    for n in nodes:
        if not n.up():
            n.start()
    assert pg_restarted and kills >= 3, kills

    assert not unexpected, unexpected[:10]
    assert not stale, stale[:10]
    assert reads_checked[0] > 200, reads_checked[0]

    sm = client(nodes[1])
    total = 0
    for name in names:
        mine = acked[name]
        total += len(mine)
        versions = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
        by_id = {v["VersionId"]: v.get("VersionStages", []) for v in versions}
        values: dict[str, str] = {}
        for vid in by_id:
            values[vid] = sm.get_secret_value(SecretId=name, VersionId=vid)["SecretString"]
        # Every acknowledged write is there, with its value.
        for i, token, _ in mine:
            assert values.get(token) == f"{name}#{i}", (name, i, token)
        # No write was applied twice: each value is held by one version.
        held = sorted(values.values())
        assert len(held) == len(set(held)), (name, held)
        # Labels: one AWSCURRENT, on the last acknowledged write or the one after it (sent,
        # committed, not acknowledged before its node died).
        current = [vid for vid, st in by_id.items() if "AWSCURRENT" in st]
        assert len(current) == 1, by_id
        last = mine[-1][0] if mine else 0
        assert counter_of(values[current[0]]) in (last, last + 1), (name, last, values[current[0]])
        previous = [vid for vid, st in by_id.items() if "AWSPREVIOUS" in st]
        assert len(previous) == 1, by_id
    assert total >= 6 * WRITERS, total

    # Rotations: each completes (an attempt cut off by a kill is taken over once its
    # lease has run out), exactly once, and never on two nodes at once.
    def completed() -> bool:
        for arn in rotated:
            stages = sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
            if any("AWSPENDING" in s for s in stages.values()) or len(stages) < 2:
                return False
        return True

    try:
        wait_until(completed, timeout=90, interval=0.5, what="every rotation to complete")
    except AssertionError:
        states = [(arn, sm.describe_secret(SecretId=arn)["VersionIdsToStages"]) for arn in rotated]
        rows = subprocess.run(
            ["psql", nodes[0].env["ARCA_DATABASE"], "-At", "-c",
             "SELECT name, rotation_due_at, extra->'rotation', arca_now_ms() FROM secrets "
             "WHERE name LIKE 'multi/r%'"], capture_output=True, text=True, timeout=30)
        logs = {n.name: n.log[-25:] for n in nodes}
        raise AssertionError(f"rotations unfinished: {states}\n{rows.stdout}{rows.stderr}\n"
                             f"{json.dumps(logs, indent=1)}")
    # The scheduled ones that came due during the chaos ran once each; a second window,
    # with every node up, once more.
    wait_until(lambda: all(succeeded(nodes, arn) == 1 for arn in scheduled), timeout=90,
               interval=0.5, what="the scheduled rotations that came due under chaos")
    advance_clocks(nodes, 2 * DAY)
    wait_until(lambda: all(succeeded(nodes, arn) >= 2 for arn in scheduled), timeout=90,
               interval=0.5, what="the second window's scheduled rotations")
    time.sleep(1.5)  # a duplicate would show up by now (the scheduler looks every second)
    for arn in scheduled:
        assert succeeded(nodes, arn) == 2, arn
        assert succeeded(nodes, arn, test_only=True) == 1, arn
        versions = sm.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
        # The initial one, the configuration test's (AWSPENDING while it ran, as in AWS),
        # and one per rotation: no window made two.
        assert len(versions) == 4, versions
        steps = (counts / (arn.rsplit(":", 1)[-1].replace("/", "__") + ".steps")).read_text()
        created = {l.split()[2] for l in steps.splitlines() if l.startswith("start createSecret")}
        assert len(created) == 2, steps
    for arn in rotated + scheduled:
        key = arn.rsplit(":", 1)[-1].replace("/", "__")
        lines = [l.split() for l in (counts / f"{key}.steps").read_text().splitlines()]
        running: dict[str, str] = {}
        for words in lines:
            if words[0] == "start":
                _, step, token, pid, at = words
                # A second runner of the same rotation would start while the first runs.
                assert not running, f"{key}: {step} started while {running} ran"
                running[pid] = step
            else:
                running.pop(words[4], None)
        if arn in rotated:
            assert succeeded(nodes, arn) == 1, key

