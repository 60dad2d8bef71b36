"""Stopping the server at awkward moments: after `kill -9` every acknowledged write
survives and a rotation cut off mid-step resumes (once its lease runs out) and completes
exactly once; after a clean stop, even the access dates still gathering for their batch
write are kept."""

from __future__ import annotations

import base64
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REPO, _drain
from helpers import ACCESS_KEY, SECRET_KEY, wait_until

LISTEN_RE = re.compile(r"arca: listening on (\S+:\d+)")
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:crash-template"


def _binary() -> str:
    b = Path(os.environ.get("ARCA_BIN", REPO / "target" / "debug" / "arca"))
    return str(b if b.is_absolute() else REPO / b)


class Proc:
    """An arca server on a given database; killed with SIGKILL, never shut down cleanly."""

    def __init__(self, args: list[str], env: dict):
        self.log: list[str] = []
        self.proc = subprocess.Popen([_binary(), "server", "--listen", "127.0.0.1:0", *args],
                                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
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

    def client(self):
        return boto3.session.Session(
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name="us-east-1"
        ).client("secretsmanager", endpoint_url=self.endpoint,
                 config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10))

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=20) == 0, "\n".join(self.log)


def _env(tmp_path: Path, with_keys: bool = False) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARCA_"))}
    env["ARCA_ROOT_KEY"] = base64.b64encode(os.urandom(32)).decode()
    env["ARCA_DATABASE"] = str(tmp_path / "arca.db")
    if with_keys:
        env["ARCA_ACCESS_KEY_ID"] = ACCESS_KEY
        env["ARCA_SECRET_ACCESS_KEY"] = SECRET_KEY
    return env


def test_acknowledged_writes_survive_kill_9(tmp_path):
    env = _env(tmp_path, with_keys=True)
    srv = Proc([], env)
    sm = srv.client()
    names = [f"crash/{i}" for i in range(6)]
    for n in names:
        sm.create_secret(Name=n, SecretString="v0")
    acked: list[tuple[str, str, str]] = []
    stop = threading.Event()

    def writer(name: str) -> None:
        c = srv.client()
        i = 0
        while not stop.is_set():
            i += 1
            value = f"{name}-{i}"
            try:
                r = c.put_secret_value(SecretId=name, SecretString=value)
            except Exception:  # noqa: BLE001 - the server is being killed
                return
            acked.append((name, r["VersionId"], value))

    threads = [threading.Thread(target=writer, args=(n,)) for n in names]
    for t in threads:
        t.start()
    wait_until(lambda: len(acked) >= 120, timeout=30, what="writes acknowledged")
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=15)
    assert len(acked) >= 120

    srv = Proc([], env)
    try:
        sm = srv.client()
        for name, version, value in acked:
            got = sm.get_secret_value(SecretId=name, VersionId=version)
            assert got["SecretString"] == value, (name, version)
        for n in names:
            stages = sm.describe_secret(SecretId=n)["VersionIdsToStages"]
            labels = [s for v in stages.values() for s in v]
            assert labels.count("AWSCURRENT") == 1, stages
            # The last acknowledged write of each secret is AWSCURRENT or was followed by
            # one that committed without being acknowledged before the kill.
            mine = [a for a in acked if a[0] == n]
            if mine:
                current = sm.get_secret_value(SecretId=n)["VersionId"]
                assert current in stages
    finally:
        srv.kill9()


def test_clean_stop_keeps_pending_access_dates(tmp_path):
    env = _env(tmp_path, with_keys=True)
    srv = Proc([], env)
    sm = srv.client()
    sm.create_secret(Name="read-then-stop", SecretString="v")
    sm.get_secret_value(SecretId="read-then-stop")
    # Straight away: the date is still gathering for its batch (about a second).
    srv.stop()
    srv = Proc([], env)
    try:
        d = srv.client().describe_secret(SecretId="read-then-stop")
        assert "LastAccessedDate" in d, d
    finally:
        srv.kill9()


def test_rotation_cut_off_by_kill_9_resumes_and_completes_once(tmp_path):
    env = _env(tmp_path)
    env["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
    env["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
    flags = tmp_path / "flags"
    flags.mkdir()
    env["E2E_ROT_DIR"] = str(flags)
    config = tmp_path / "arca.toml"
    argv = [sys.executable, str(REPO / "contrib" / "lambda_shim.py"), "template_rotation.lambda_handler",
            "--path", str(REPO / "tests" / "e2e" / "handlers")]
    config.write_text(
        "[[rotation_functions]]\n"
        f'arn = "{FUNCTION_ARN}"\n'
        'type = "command"\n'
        f"argv = {argv!r}\n".replace("'", '"')
        + "timeout_secs = 60\n"
    )
    args = ["--dev", "--config", str(config)]
    srv = Proc(args, env)
    sm = srv.client()
    arn = sm.create_secret(Name="crash-rot", SecretString="before")["ARN"]
    key = arn.rsplit(":", 1)[-1]
    (flags / f"{key}.sleep.setSecret").write_text("")
    token = sm.rotate_secret(SecretId="crash-rot", RotationLambdaARN=FUNCTION_ARN,
                             RotationRules={"AutomaticallyAfterDays": 30})["VersionId"]
    log = flags / f"{key}.log"
    wait_until(lambda: log.exists() and "setSecret" in log.read_text(), timeout=30,
               what="the rotation to reach setSecret")
    srv.kill9()

    (flags / f"{key}.sleep.setSecret").unlink()
    srv = Proc(args, env)
    try:
        sm = srv.client()
        # AWSCURRENT still works; the rotation is persisted as in progress.
        assert sm.get_secret_value(SecretId="crash-rot")["SecretString"] == "before"
        assert sm.describe_secret(SecretId="crash-rot")["VersionIdsToStages"][token] == ["AWSPENDING"]
        # Its runner died holding a 15-minute lease; once the lease has run out, the same
        # rotation resumes (its steps are idempotent) and completes.
        assert "finishSecret" not in log.read_text()
        requests.post(f"{srv.endpoint}/_arca/dev/advance-clock", params={"seconds": 16 * 60}, timeout=10)

        def done():
            return sm.describe_secret(SecretId="crash-rot")["VersionIdsToStages"].get(token) == ["AWSCURRENT"]

        wait_until(done, timeout=30, what="the resumed rotation to finish")
        events = requests.post(f"{srv.endpoint}/_arca/dev/events", timeout=10).json()["events"]
        names = [e["name"] for e in events]
        assert names.count("RotationSucceeded") == 1, names
        assert names.count("RotationStarted") == 1, names
        versions = sm.list_secret_version_ids(SecretId="crash-rot", IncludeDeprecated=True)["Versions"]
        assert len(versions) == 2, versions
        assert sm.get_secret_value(SecretId="crash-rot", VersionStage="AWSPREVIOUS")["SecretString"] == "before"
        assert sm.get_secret_value(SecretId="crash-rot")["SecretString"] != "before"
    finally:
        srv.kill9()
