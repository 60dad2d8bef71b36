"""Shared by the rotation tests (test_rotation_*.py): a dev server started with a config
file binding rotation functions, the event log, polling for rotation outcomes, an HTTP
rotation-function receiver that checks Arca's signature, a TCP proxy that can be taken
down (a database that goes away and comes back), and PostgreSQL/MariaDB admin helpers.

Every test module starts its own server (its own function bindings); the module's
`server` fixture overrides conftest's, so conftest's per-test reset applies to it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import requests
from botocore.config import Config

from conftest import arca_binary
from helpers import ACCESS_KEY, REGION, SECRET_KEY

REPO = Path(__file__).resolve().parents[2]
HANDLERS = Path(__file__).resolve().parent / "handlers"
SHIM = REPO / "contrib" / "lambda_shim.py"
LISTEN_RE = re.compile(r"arca: listening on (\S+):(\d+)(?: \((https?)\))?")


def fn_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


def shim_argv(handler: str = "template_rotation.lambda_handler") -> list[str]:
    """A command rotation function running a Lambda-style handler through the shim."""
    return [sys.executable, str(SHIM), handler, "--path", str(HANDLERS)]


def toml_str(s: str) -> str:
    return json.dumps(s)  # a JSON string is a valid TOML basic string


def toml_function(arn: str, **fields) -> str:
    lines = ["[[rotation_functions]]", f"arn = {toml_str(arn)}"]
    options = fields.pop("options", None)
    for k, v in fields.items():
        if isinstance(v, bool):
            lines.append(f"{k} = {'true' if v else 'false'}")
        elif isinstance(v, int):
            lines.append(f"{k} = {v}")
        elif isinstance(v, list):
            lines.append(f"{k} = [{', '.join(toml_str(x) for x in v)}]")
        else:
            lines.append(f"{k} = {toml_str(str(v))}")
    if options:
        lines.append(f"[rotation_functions.options]")
        for k, v in options.items():
            lines.append(f"{k} = {json.dumps(v)}")
    return "\n".join(lines) + "\n"


class RotationServer:
    """`arca server --dev --config FILE` on port 0, with the dev controls."""

    def __init__(self, endpoint: str, proc: subprocess.Popen, log: list[str],
                 verify: str | bool = True):
        self.endpoint = endpoint
        self.proc = proc
        self.log = log
        # A CA bundle's path when the server speaks TLS under a test CA.
        self.verify = verify
        self._clients: dict = {}

    # conftest's `_fresh_state` calls these two around every test.
    def reset(self) -> None:
        r = requests.post(f"{self.endpoint}/_arca/dev/reset", timeout=10, verify=self.verify)
        assert r.status_code < 300, f"dev reset failed: {r.status_code} {r.text}"

    def assert_alive(self) -> None:
        assert self.proc.poll() is None, f"arca exited:\n{self.tail()}"

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.log[-n:])

    def advance_clock(self, seconds: int) -> None:
        r = requests.post(f"{self.endpoint}/_arca/dev/advance-clock",
                          params={"seconds": str(int(seconds))}, timeout=10, verify=self.verify)
        assert r.status_code < 300, f"advance-clock failed: {r.status_code} {r.text}"

    def events(self, arn: str | None = None, after: int | None = None) -> list[dict]:
        params = {}
        if arn:
            params["secret"] = arn
        if after is not None:
            params["after"] = str(after)
        r = requests.post(f"{self.endpoint}/_arca/dev/events", params=params, timeout=10, verify=self.verify)
        assert r.status_code == 200, f"events failed: {r.status_code} {r.text}"
        return r.json()["events"]

    def names(self, arn: str) -> list[str]:
        return [e["name"] for e in self.events(arn)]

    def count(self, arn: str, name: str) -> int:
        return sum(1 for e in self.events(arn) if e["name"] == name)

    def wait_event(self, arn: str, name: str, count: int = 1, timeout: float = 10.0) -> dict:
        """Waits until `count` events `name` are recorded for arn; returns the last one.
        Fails at once, with the event log, if a RotationFailed shows up unexpectedly."""
        deadline = time.monotonic() + timeout
        while True:
            evs = self.events(arn)
            hits = [e for e in evs if e["name"] == name]
            if len(hits) >= count:
                return hits[-1]
            if name == "RotationSucceeded":
                failed = [e for e in evs if e["name"] == "RotationFailed"]
                if len(failed) > getattr(self, "_tolerated_failures", {}).get(arn, 0):
                    raise AssertionError(f"rotation failed: {failed[-1]}\n{json.dumps(evs, indent=1)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {count}x {name} on {arn}; events:\n"
                                     f"{json.dumps(evs, indent=1)}\nserver log:\n{self.tail()}")
            time.sleep(0.1)

    def tolerate_failures(self, arn: str, n: int) -> None:
        """wait_event(RotationSucceeded) ignores the first n RotationFailed events of arn."""
        if not hasattr(self, "_tolerated_failures"):
            self._tolerated_failures = {}
        self._tolerated_failures[arn] = n

    def client(self, validate: bool = True):
        if validate not in self._clients:
            self._clients[validate] = make_sm(self.endpoint, validate=validate,
                                              verify=self.verify)
        return self._clients[validate]


def make_sm(endpoint: str, validate: bool = True, access_key: str = ACCESS_KEY,
            secret_key: str = SECRET_KEY, region: str = REGION, verify: str | bool = True):
    session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                    region_name=region)
    return session.client("secretsmanager", endpoint_url=endpoint, verify=verify, config=Config(
        retries={"max_attempts": 1, "mode": "standard"}, parameter_validation=validate,
        connect_timeout=5, read_timeout=30))


def _drain(stream, sink: list[str], lines: "queue.Queue[str | None]") -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip("\n")
        sink.append(line)
        lines.put(line)
    lines.put(None)


def start_server(workdir: Path, config: str, extra_env: dict | None = None,
                 verify: str | bool = True, listen: str = "127.0.0.1:0",
                 extra_args: list[str] | None = None) -> RotationServer:
    binary = arca_binary()
    assert binary.exists(), f"arca binary not found at {binary} (build it or set ARCA_BIN)"
    cfg = workdir / "arca.toml"
    cfg.write_text(config)
    env = dict(os.environ)
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    env.pop("AWS_SESSION_TOKEN", None)
    env.update(extra_env or {})
    proc = subprocess.Popen(
        [str(binary), "server", "--dev", "--config", str(cfg), "--listen", listen,
         *(extra_args or [])],
        cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    log: list[str] = []
    lines: "queue.Queue[str | None]" = queue.Queue()
    threading.Thread(target=_drain, args=(proc.stdout, log, lines), daemon=True).start()
    deadline = time.monotonic() + 20
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            proc.kill()
            raise AssertionError("arca did not start:\n" + "\n".join(log))
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            continue
        if line is None:
            proc.wait(timeout=5)
            raise AssertionError(f"arca exited with {proc.returncode}:\n" + "\n".join(log))
        m = LISTEN_RE.search(line)
        if m:
            scheme = m.group(3) or "http"
            return RotationServer(f"{scheme}://{m.group(1)}:{m.group(2)}", proc, log, verify)


def stop_server(srv: RotationServer) -> None:
    srv.proc.terminate()
    try:
        srv.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        srv.proc.wait(timeout=10)


# ---------- secrets and versions ----------

def stage_holder(sm, arn: str, stage: str) -> str | None:
    for v, stages in sm.describe_secret(SecretId=arn).get("VersionIdsToStages", {}).items():
        if stage in stages:
            return v
    return None


def value(sm, arn: str, stage: str = "AWSCURRENT") -> str:
    return sm.get_secret_value(SecretId=arn, VersionStage=stage)["SecretString"]


def json_value(sm, arn: str, stage: str = "AWSCURRENT") -> dict:
    return json.loads(value(sm, arn, stage))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------- the HTTP rotation function ----------

def signed_by_arca(secret: bytes, headers, body: bytes) -> bool:
    """What a receiver of Arca's webhooks checks: X-Arca-Signature is v1= HMAC-SHA256 of
    "<X-Arca-Timestamp>.<body>", and the timestamp is fresh."""
    ts = headers.get("X-Arca-Timestamp", "")
    sig = headers.get("X-Arca-Signature", "")
    want = "v1=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
    return fresh and hmac.compare_digest(want, sig)


class Receiver:
    """An HTTP rotation function: verifies X-Arca-Signature, runs the template handler's
    step with its own boto3 client (as a Lambda would), answers 200, or 500 for steps
    told to fail. Records every call (secret ARN, step, token) and bad signatures."""

    def __init__(self, secret: bytes):
        self.secret = secret
        self.endpoint: str | None = None
        self.calls: list[tuple[str, str, str]] = []
        self.bad_signatures = 0
        self.fail: set[tuple[str, str]] = set()  # (arn, step)
        self.lock = threading.Lock()
        recv = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if not signed_by_arca(recv.secret, self.headers, body):
                    with recv.lock:
                        recv.bad_signatures += 1
                    return self._answer(401)
                event = json.loads(body)
                with recv.lock:
                    recv.calls.append((event["SecretId"], event["Step"], event["ClientRequestToken"]))
                    fail = (event["SecretId"], event["Step"]) in recv.fail
                if fail:
                    return self._answer(500)
                try:
                    import template_rotation
                    template_rotation.rotate(make_sm(recv.endpoint), event)
                except Exception as e:  # noqa: BLE001 - the step failed
                    sys.stderr.write(f"receiver: {event['Step']} failed: {type(e).__name__}: {e}\n")
                    return self._answer(500)
                self._answer(200)

            def _answer(self, status):
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        if str(HANDLERS) not in sys.path:
            sys.path.insert(0, str(HANDLERS))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/rotate"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def steps(self, arn: str) -> list[str]:
        with self.lock:
            return [s for a, s, _ in self.calls if a == arn]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def write_hmac_secret(path: Path) -> bytes:
    secret = secrets.token_hex(24).encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secret)
    return secret


# ---------- a TCP proxy that can be taken down ----------

class Proxy:
    """Forwards 127.0.0.1:<port> to a target while up; while down nothing listens."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.port = free_port()
        self.sock: socket.socket | None = None

    def up(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(16)
        self.sock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def down(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def _accept(self, s):
        while True:
            try:
                c, _ = s.accept()
            except OSError:
                return
            try:
                t = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                c.close()
                continue
            for a, b in ((c, t), (t, c)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        finally:
            for x in (a, b):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


# ---------- databases ----------

PG_PORT = 5432
MY_PORT = 3306
PG_GROUP = "arca_rotation_test"
MY_DB = "arca_e2e"


def random_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def random_password() -> str:
    return "Pw" + secrets.token_hex(12)


def pg_admin():
    import psycopg
    return psycopg.connect(host="127.0.0.1", port=PG_PORT, user="postgres", dbname="postgres",
                           autocommit=True, connect_timeout=5)


def pg_login_ok(user: str, password: str, port: int = PG_PORT) -> bool:
    import psycopg
    try:
        with psycopg.connect(host="127.0.0.1", port=port, user=user, password=password,
                             dbname="postgres", connect_timeout=3) as c:
            c.execute("SELECT 1").fetchone()
        return True
    except psycopg.OperationalError:
        return False


def ensure_pg_password_auth() -> None:
    """PostgreSQL here trusts every 127.0.0.1 login, so no password could fail. Members of
    the role arca_rotation_test log in with SCRAM instead: one line at the top of
    pg_hba.conf, the same the arca-rotation crate's tests put there (idempotent)."""
    with pg_admin() as c:
        c.execute("SELECT pg_advisory_lock(7319420)")
        try:
            c.execute(f"DO $$ BEGIN CREATE ROLE {PG_GROUP} NOLOGIN; EXCEPTION WHEN duplicate_object "
                      f"OR unique_violation THEN NULL; END $$")
            present = c.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_hba_file_rules r WHERE %s = ANY(r.user_name) "
                "AND r.auth_method = 'scram-sha-256' AND r.line_number < COALESCE((SELECT "
                "min(line_number) FROM pg_hba_file_rules WHERE type = 'host' AND auth_method = "
                "'trust'), 2147483647))", (f"+{PG_GROUP}",)).fetchone()[0]
            if not present:
                path = c.execute("SHOW hba_file").fetchone()[0]
                old = Path(path).read_text()
                Path(path).write_text(
                    f"# Arca rotation tests: members of {PG_GROUP} need a password.\n"
                    f"host all +{PG_GROUP} 127.0.0.1/32 scram-sha-256\n{old}")
                c.execute("SELECT pg_reload_conf()")
            probe = random_name("arca_e2e_probe")
            c.execute(f"CREATE ROLE {probe} LOGIN PASSWORD 'right' IN ROLE {PG_GROUP}")
            try:
                deadline = time.monotonic() + 5
                while pg_login_ok(probe, "wrong"):
                    assert time.monotonic() < deadline, "PostgreSQL does not check passwords"
                    time.sleep(0.05)
            finally:
                c.execute(f"DROP ROLE {probe}")
        finally:
            c.execute("SELECT pg_advisory_unlock(7319420)")


def pg_secret(user: str, password: str, port: int = PG_PORT, **extra) -> dict:
    return {"engine": "postgres", "host": "127.0.0.1", "port": port, "username": user,
            "password": password, "dbname": "postgres", **extra}


def my_admin():
    import pymysql
    return pymysql.connect(host="127.0.0.1", port=MY_PORT, user="root", password="",
                           autocommit=True, connect_timeout=5)


def my_sql(*stmts: str):
    c = my_admin()
    try:
        with c.cursor() as cur:
            out = None
            for s in stmts:
                cur.execute(s)
                out = cur.fetchall()
            return out
    finally:
        c.close()


def my_login_ok(user: str, password: str, port: int = MY_PORT) -> bool:
    import pymysql
    try:
        c = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password,
                            database=MY_DB, connect_timeout=3)
    except pymysql.err.OperationalError:
        return False
    try:
        with c.cursor() as cur:
            cur.execute("SELECT 1")
        return True
    finally:
        c.close()


def my_secret(user: str, password: str, port: int = MY_PORT, **extra) -> dict:
    return {"engine": "mysql", "host": "127.0.0.1", "port": port, "username": user,
            "password": password, "dbname": MY_DB, **extra}


def my_grants(user: str) -> list[str]:
    rows = my_sql(f"SHOW GRANTS FOR '{user}'@'%'")
    out = []
    for (g,) in rows:
        g = g.replace(f"`{user}`@`%`", "<grantee>").replace(f"'{user}'@'%'", "<grantee>")
        i = g.find(" IDENTIFIED BY")
        out.append(g[:i] if i >= 0 else g)
    return sorted(out)


class LoginLoop:
    """A client that, over and over, reads AWSCURRENT with GetSecretValue and logs in with
    it, counting good and failed logins (an application reconnecting during rotations)."""

    def __init__(self, endpoint: str, arn: str, login):
        self.sm = make_sm(endpoint)
        self.arn, self.login = arn, login
        self.ok = 0
        self.failed: list[str] = []
        self.users: Counter = Counter()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            j = json.loads(self.sm.get_secret_value(SecretId=self.arn)["SecretString"])
            if self.login(j["username"], j["password"]):
                self.ok += 1
                self.users[j["username"]] += 1
            else:
                self.failed.append(j["username"])
            time.sleep(0.02)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(timeout=10)
