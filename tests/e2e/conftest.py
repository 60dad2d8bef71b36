"""Fixtures for Arca's end-to-end suite: one `arca server --dev` per session on port 0,
boto3 clients per region, a raw SigV4 request helper, a wipe before every test, and an
`aws` CLI runner.

The suite is the acceptance test for the AWS Secrets Manager API as documented by AWS
and botocore's model; it talks to the real binary through real clients only.

Environment:
  ARCA_BIN       path of the arca binary (default: <repo>/target/debug/arca)
  ARCA_ENDPOINT  use an already running dev server instead of spawning one
"""

from __future__ import annotations

import os
import uuid
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config

from helpers import ACCESS_KEY, ACCOUNT_ID, REGION, SECRET_KEY, CliResult, RawClient

REPO = Path(__file__).resolve().parents[2]
LISTEN_RE = re.compile(r"arca: listening on (\S+):(\d+)")
STARTUP_TIMEOUT = 20.0


class ArcaServer:
    """A running `arca server --dev` and its dev-only controls."""

    def __init__(self, endpoint: str, proc: subprocess.Popen | None, log: list[str]):
        self.endpoint = endpoint
        self.proc = proc
        self.log = log

    def reset(self) -> None:
        r = requests.post(f"{self.endpoint}/_arca/dev/reset", timeout=10)
        assert r.status_code < 300, f"dev reset failed: {r.status_code} {r.text}"

    def advance_clock(self, seconds: int) -> None:
        r = requests.post(
            f"{self.endpoint}/_arca/dev/advance-clock",
            params={"seconds": str(int(seconds))},
            timeout=10,
        )
        assert r.status_code < 300, f"advance-clock failed: {r.status_code} {r.text}"

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log[-n:])

    def assert_alive(self) -> None:
        if self.proc is not None:
            assert self.proc.poll() is None, f"arca exited:\n{self.tail()}"


def arca_binary() -> Path:
    """The arca binary under test: ARCA_BIN (relative to the repository), else the debug build."""
    b = Path(os.environ.get("ARCA_BIN", REPO / "target" / "debug" / "arca"))
    return b if b.is_absolute() else REPO / b


def _drain(stream, sink: list[str], lines: "queue.Queue[str | None]") -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        sink.append(line)
        lines.put(line)
    lines.put(None)


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> ArcaServer:
    external = os.environ.get("ARCA_ENDPOINT")
    if external:
        yield ArcaServer(external.rstrip("/"), None, [])
        return

    binary = arca_binary()
    if not binary.exists():
        pytest.fail(f"arca binary not found at {binary} (build it or set ARCA_BIN)")

    workdir = tmp_path_factory.mktemp("arca")
    env = dict(os.environ)
    env["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
    env["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
    env.pop("AWS_SESSION_TOKEN", None)
    env.setdefault("RUST_BACKTRACE", "1")
    args = [str(binary), "server", "--dev", "--listen", "127.0.0.1:0"]
    schema = None
    if os.environ.get("ARCA_E2E_DATABASE") == "postgres":
        # The same suite on PostgreSQL: a schema of its own on the test server.
        schema, url = postgres_schema()
        args += ["--database", url]
    proc = subprocess.Popen(
        args,
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    log: list[str] = []
    lines: "queue.Queue[str | None]" = queue.Queue()
    threading.Thread(target=_drain, args=(proc.stdout, log, lines), daemon=True).start()

    deadline = time.monotonic() + STARTUP_TIMEOUT
    endpoint = None
    while endpoint is None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            proc.kill()
            pytest.fail(f"arca did not print its listening line in {STARTUP_TIMEOUT}s:\n" + "\n".join(log))
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            proc.wait(timeout=5)
            pytest.fail(f"arca exited with {proc.returncode} before listening:\n" + "\n".join(log))
        m = LISTEN_RE.search(line)
        if m:
            endpoint = f"http://{m.group(1)}:{m.group(2)}"

    srv = ArcaServer(endpoint, proc, log)
    try:
        yield srv
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if schema:
            drop_postgres_schema(schema)


POSTGRES_URL = os.environ.get("ARCA_TEST_POSTGRES", "postgres://root@127.0.0.1:5432/test")


def _psql(sql: str) -> None:
    subprocess.run(["psql", POSTGRES_URL, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
                   check=True, capture_output=True, timeout=30)


def postgres_schema() -> tuple[str, str]:
    """A new empty schema on the test PostgreSQL, and the URL whose sessions use it."""
    schema = f"arca_e2e_{uuid.uuid4().hex}"
    _psql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    return schema, f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"


def drop_postgres_schema(schema: str) -> None:
    _psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture(autouse=True)
def _fresh_state(request, server: ArcaServer):
    """Every test starts with no secrets in any region."""
    server.reset()
    yield
    server.assert_alive()


@pytest.fixture(scope="session")
def make_client(server: ArcaServer):
    """make_client(region=REGION, validate=True, **creds) -> a boto3 secretsmanager client.

    validate=False turns off botocore's client-side parameter validation so that
    out-of-range values reach the server (the server must reject them itself).
    """
    cache: dict = {}

    def make(region: str = REGION, validate: bool = True, access_key: str = ACCESS_KEY,
             secret_key: str = SECRET_KEY):
        key = (region, validate, access_key, secret_key)
        if key not in cache:
            session = boto3.session.Session(
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                region_name=region,
            )
            cache[key] = session.client(
                "secretsmanager",
                endpoint_url=server.endpoint,
                config=Config(
                    retries={"max_attempts": 1, "mode": "standard"},
                    parameter_validation=validate,
                    connect_timeout=5,
                    read_timeout=30,
                ),
            )
        return cache[key]

    return make


@pytest.fixture
def sm(make_client):
    """The default client: us-east-1, test credentials, client-side validation on."""
    return make_client()


@pytest.fixture
def sm_raw(make_client):
    """A client with botocore's parameter validation off (reaches the server's checks)."""
    return make_client(validate=False)


@pytest.fixture
def raw(server: ArcaServer) -> RawClient:
    return RawClient(server.endpoint)


def _aws_executable() -> str:
    candidate = Path(sys.executable).parent / "aws"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("aws")
    if not found:
        pytest.fail("aws CLI not found next to the Python interpreter nor on PATH")
    return found


@pytest.fixture
def aws(server: ArcaServer, tmp_path):
    """aws("create-secret", "--name", "x", region=...) -> CliResult for `aws secretsmanager ...`."""
    exe = _aws_executable()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_CONFIG_FILE=str(tmp_path / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_PAGER="",
        AWS_MAX_ATTEMPTS="1",
        AWS_RETRY_MODE="standard",
    )

    def run(*args: str, region: str = REGION) -> CliResult:
        cmd = [exe, "secretsmanager", *args, "--endpoint-url", server.endpoint,
               "--region", region, "--output", "json"]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
        return CliResult(cmd, p.returncode, p.stdout, p.stderr)

    return run


__all__ = ["ACCOUNT_ID"]
