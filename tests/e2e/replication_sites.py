"""Two Arca deployments on two ports, each over TLS under one throwaway CA, replicating to
each other: site A serves us-east-1 and names eu-west-1 as served by site B; site B names
us-east-1 as served by A (so that a promotion there reaches A). Each side holds an access
key bound to replication, made with `arca access-key create --replication` and handed to
the other side in a 0600 file. Used by the remote replication tests, the fault test and
`scripts/replication-fault`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from conftest import arca_binary
from rotation_helpers import RotationServer, free_port, make_sm, start_server, stop_server, toml_str
from pki import make_pki

A_REGION = "us-east-1"
B_REGION = "eu-west-1"


def admin(*args: str, db: Path, root: Path) -> str:
    out = subprocess.run([str(arca_binary()), "--database", str(db), "--root-key-file", str(root),
                          *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@dataclass
class Site:
    name: str
    region: str
    dir: Path
    port: int
    config: str
    pki: dict
    server: RotationServer | None = None
    clients: dict = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.dir / "arca.db"

    @property
    def root(self) -> Path:
        return self.dir / "root.key"

    @property
    def endpoint(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = start_server(self.dir, self.config, verify=str(self.pki["ca"]),
                                   listen=f"127.0.0.1:{self.port}",
                                   extra_args=["--database", str(self.db),
                                               "--root-key-file", str(self.root)],
                                   extra_env={"ARCA_LOG": "info"})
        self.clients = {}

    def stop(self) -> None:
        if self.server is not None:
            stop_server(self.server)
            self.server = None

    def kill(self) -> None:
        """kill -9: no shutdown, no flush."""
        if self.server is not None:
            self.server.proc.send_signal(signal.SIGKILL)
            self.server.proc.wait(timeout=10)
            self.server = None

    def client(self, region: str | None = None):
        region = region or self.region
        if region not in self.clients:
            self.clients[region] = make_sm(self.endpoint, region=region, verify=str(self.pki["ca"]))
        return self.clients[region]

    def outbox(self) -> int:
        out = admin("status", db=self.db, root=self.root)
        m = re.search(r"replication outbox: (\d+) pending", out)
        assert m, out
        return int(m.group(1))


def make_sites(base: Path, failed_after_secs: int = 300) -> tuple[Site, Site]:
    (base / "pki").mkdir()
    pki = make_pki(base / "pki")
    a_dir, b_dir = base / "site-a", base / "site-b"
    a_dir.mkdir()
    b_dir.mkdir()
    ports = free_port(), free_port()
    for d in (a_dir, b_dir):
        subprocess.run([str(arca_binary()), "init-root-key", str(d / "root.key")], check=True,
                       capture_output=True, timeout=60)
    keys = {}
    for d in (a_dir, b_dir):
        out = admin("access-key", "create", "--replication", "--description", "replication link",
                    db=d / "arca.db", root=d / "root.key")
        kid = re.search(r"AWS_ACCESS_KEY_ID=(\S+)", out).group(1)
        secret = re.search(r"AWS_SECRET_ACCESS_KEY=(\S+)", out).group(1)
        f = d / "link-secret-of-this-site"
        f.write_text(secret + "\n")
        f.chmod(0o600)
        keys[d] = (kid, f)

    def cfg(region_there: str, port_there: int, there: Path) -> str:
        kid, secret_file = keys[there]
        return (f"[tls]\ncert_file = {toml_str(str(pki['cert']))}\n"
                f"key_file = {toml_str(str(pki['key']))}\nca_file = {toml_str(str(pki['ca']))}\n"
                f"[replication]\nfailed_after_secs = {failed_after_secs}\n"
                f"[[replication.regions]]\nregion = {toml_str(region_there)}\n"
                f"endpoint = {toml_str(f'https://127.0.0.1:{port_there}')}\n"
                f"access_key_id = {toml_str(kid)}\n"
                f"secret_access_key_file = {toml_str(str(secret_file))}\n"
                f"ca_file = {toml_str(str(pki['ca']))}\ntimeout_secs = 3\n")

    a = Site("A", A_REGION, a_dir, ports[0], cfg(B_REGION, ports[1], b_dir), pki)
    b = Site("B", B_REGION, b_dir, ports[1], cfg(A_REGION, ports[0], a_dir), pki)
    return a, b


def link_key(site: Site) -> tuple[str, str]:
    """The replication key that `site` accepts (as the other side holds it)."""
    kid = None
    for line in admin("access-key", "list", db=site.db, root=site.root).splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[2] == "replication":
            kid = parts[0]
    secret = (site.dir / "link-secret-of-this-site").read_text().strip()
    assert kid, "no replication key"
    return kid, secret


def env_rounds(name: str, default: int) -> int:
    return int(os.environ.get(name, default))
