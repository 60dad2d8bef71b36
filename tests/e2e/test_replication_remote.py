"""Replication across two deployments over TLS (see replication_sites.py): values reach the
other site; the link's key can do nothing but deliver, and no other key can deliver; a
site that is down shows as InProgress, then Failed with the reason, and catches up when
it returns; the seed article's disaster recovery (the primary site lost, the application
reads from the replica site, the operator promotes there, the old primary returns and
does not overwrite it); and the fault test (kill -9 either site at random moments under
a steady write load: afterwards every acknowledged write is on the replica, in order, and
the outbox is empty). The fault test's rounds: ARCA_REPLICATION_FAULT_ROUNDS (3 here;
`scripts/replication-fault` runs 20)."""

from __future__ import annotations

import random
import subprocess
import threading
import time

import botocore.exceptions
import pytest

from conftest import arca_binary
from helpers import RawClient, token, wait_until
from replication_sites import A_REGION, B_REGION, env_rounds, link_key, make_sites


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    a, b = make_sites(tmp_path_factory.mktemp("replication-sites"), failed_after_secs=3)
    b.start()
    a.start()
    yield a, b
    a.stop()
    b.stop()


@pytest.fixture(autouse=True)
def _both_up(sites):
    """Every test starts with both sites serving (a failed test may have left one down)."""
    for s in sites:
        if s.server is None:
            s.start()
    yield


def status_of(sm, secret_id: str, region: str) -> dict | None:
    for s in sm.describe_secret(SecretId=secret_id).get("ReplicationStatus", []):
        if s["Region"] == region:
            return s
    return None


def replica_has(b, secret_id: str, expected: str, timeout: float = 20.0) -> bool:
    def read():
        try:
            return b.client().get_secret_value(SecretId=secret_id)["SecretString"] == expected
        except botocore.exceptions.ClientError:
            return False
    return wait_until(read, timeout=timeout, what=f"{expected!r} on the replica site")


def test_values_reach_the_other_deployment_over_tls(sites):
    a, b = sites
    pa = a.client()
    out = pa.create_secret(Name="remote/db", SecretString="one", ClientRequestToken=token(),
                           AddReplicaRegions=[{"Region": B_REGION}])
    replica_has(b, "remote/db", "one")
    wait_until(lambda: status_of(pa, "remote/db", B_REGION)["Status"] == "InSync", what="InSync")
    pa.put_secret_value(SecretId="remote/db", SecretString="two")
    pa.update_secret(SecretId="remote/db", Description="across sites")
    replica_has(b, "remote/db", "two")
    d = wait_until(lambda: (d := b.client().describe_secret(SecretId="remote/db")).get("Description") and d,
                   what="description on the replica site")
    assert d["PrimaryRegion"] == A_REGION
    assert d["ARN"] == out["ARN"].replace(A_REGION, B_REGION)
    # Read-only there too.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        b.client().put_secret_value(SecretId="remote/db", SecretString="x")
    assert e.value.response["Error"]["Code"] == "InvalidParameterException"


def test_the_link_key_only_delivers_and_only_it_may(sites):
    a, b = sites
    kid, secret = link_key(b)
    raw = RawClient(b.endpoint, verify=str(b.pki["ca"]))
    r = raw.call("ListSecrets", {}, region=B_REGION, access_key=kid, secret_key=secret)
    assert (r.status, r.error_type) == (400, "AccessDeniedException")
    r = raw.call("ArcaReplication.Deliver", {"Deliveries": []}, region=B_REGION)
    assert (r.status, r.error_type) == (400, "AccessDeniedException")
    r = raw.call("ArcaReplication.Deliver", {"Deliveries": []}, region=B_REGION,
                 access_key=kid, secret_key=secret)
    assert r.status == 200 and r.json == {"Outcomes": []}
    # A plain-HTTP endpoint for a remote region is refused at start (values never cross
    # in the clear).
    bad = a.config.replace(f"https://127.0.0.1:{b.port}", f"http://127.0.0.1:{b.port}")
    cfg = a.dir / "bad.toml"
    cfg.write_text(bad)
    out = subprocess.run([str(arca_binary()), "server", "--config", str(cfg), "--database",
                          str(a.dir / "other.db"), "--root-key-file", str(a.root),
                          "--listen", "127.0.0.1:0"], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert "must be https://" in out.stderr


def test_a_site_that_is_down_is_in_progress_then_failed_then_catches_up(sites):
    a, b = sites
    pa = a.client()
    pa.create_secret(Name="remote/down", SecretString="before",
                     AddReplicaRegions=[{"Region": B_REGION}])
    replica_has(b, "remote/down", "before")
    b.stop()
    pa.put_secret_value(SecretId="remote/down", SecretString="while-down")
    # InProgress once the first attempt has failed (moments later), with no message yet.
    st = wait_until(lambda: (s := status_of(pa, "remote/down", B_REGION))["Status"] == "InProgress" and s,
                    timeout=10, what="InProgress while the site is down")
    assert "StatusMessage" not in st, st
    st = wait_until(lambda: (s := status_of(pa, "remote/down", B_REGION))["Status"] == "Failed" and s,
                    timeout=20, what="Failed after the bound")
    assert "did not answer" in st["StatusMessage"] or "not answered" in st["StatusMessage"], st
    # The primary keeps working meanwhile.
    pa.put_secret_value(SecretId="remote/down", SecretString="still-down")
    b.start()
    replica_has(b, "remote/down", "still-down", timeout=30)
    wait_until(lambda: status_of(pa, "remote/down", B_REGION)["Status"] == "InSync", timeout=20,
               what="InSync again")
    wait_until(lambda: a.outbox() == 0, timeout=20, what="empty outbox")


def test_large_values_caught_up_at_once_cross_in_several_requests(sites):
    """Ten 64 KiB versions written while the replica site is down (~900 KB of values, more
    than one ordinary request may carry) all reach it when it returns."""
    a, b = sites
    pa = a.client()
    pa.create_secret(Name="remote/big", SecretString="small",
                     AddReplicaRegions=[{"Region": B_REGION}])
    replica_has(b, "remote/big", "small")
    b.stop()
    values = [(token(), f"{i:02d}" + "x" * 65534) for i in range(10)]
    for t, v in values:
        pa.put_secret_value(SecretId="remote/big", SecretString=v, ClientRequestToken=t)
    b.start()
    replica_has(b, "remote/big", values[-1][1], timeout=30)
    rb = b.client()
    for t, v in values:
        assert rb.get_secret_value(SecretId="remote/big", VersionId=t)["SecretString"] == v
    wait_until(lambda: a.outbox() == 0, timeout=20, what="empty outbox")


def test_disaster_recovery_promote_the_replica_and_the_old_primary_does_not_overwrite_it(sites):
    a, b = sites
    pa = a.client()
    pa.create_secret(Name="remote/dr", SecretString="creds-v1",
                     AddReplicaRegions=[{"Region": B_REGION}])
    replica_has(b, "remote/dr", "creds-v1")
    a.kill()  # the primary region is lost
    rb = b.client()
    # The application in the replica region still reads its credentials.
    assert rb.get_secret_value(SecretId="remote/dr")["SecretString"] == "creds-v1"
    assert rb.describe_secret(SecretId="remote/dr")["PrimaryRegion"] == A_REGION
    # The operator promotes the replica; writes there succeed.
    rb.stop_replication_to_replica(SecretId="remote/dr")
    rb.put_secret_value(SecretId="remote/dr", SecretString="creds-dr")
    assert "PrimaryRegion" not in rb.describe_secret(SecretId="remote/dr")
    # The old primary comes back, learns of the promotion, and stops replicating there.
    a.start()
    pa = a.client()
    wait_until(lambda: "ReplicationStatus" not in pa.describe_secret(SecretId="remote/dr"),
               timeout=30, what="the old primary forgets the promoted region")
    pa.put_secret_value(SecretId="remote/dr", SecretString="old-primary-write")
    wait_until(lambda: a.outbox() == 0, timeout=20, what="empty outbox")
    wait_until(lambda: b.outbox() == 0, timeout=20, what="empty outbox on the replica site")
    assert rb.get_secret_value(SecretId="remote/dr")["SecretString"] == "creds-dr"


class Writer(threading.Thread):
    """Puts numbered values to one secret at a steady pace, keeping only acknowledged ones."""

    def __init__(self, site, secret_id: str, pace: float = 0.01):
        super().__init__(daemon=True)
        self.site, self.secret_id, self.pace = site, secret_id, pace
        self.acked: list[tuple[str, str]] = []
        self.stop = threading.Event()
        self.n = 0

    def run(self):
        while not self.stop.is_set():
            self.n += 1
            value, t = f"value-{self.n}", token()
            try:
                self.site.client().put_secret_value(SecretId=self.secret_id, SecretString=value,
                                                    ClientRequestToken=t)
                self.acked.append((t, value))
            except Exception:  # the site is being killed; an unacknowledged write may or may not land
                time.sleep(0.05)
            time.sleep(self.pace)


def test_fault_kill_either_site_under_load_and_nothing_acknowledged_is_lost(sites):
    a, b = sites
    rounds = env_rounds("ARCA_REPLICATION_FAULT_ROUNDS", 3)
    rng = random.Random(int(time.time()))
    a.client().create_secret(Name="remote/fault", SecretString="value-0",
                             AddReplicaRegions=[{"Region": B_REGION}])
    replica_has(b, "remote/fault", "value-0")
    w = Writer(a, "remote/fault")
    w.start()
    try:
        for i in range(rounds):
            victim = b if i % 2 == 0 else a
            time.sleep(rng.uniform(0.05, 0.6))
            victim.kill()
            time.sleep(rng.uniform(0.0, 0.4))
            victim.start()
    finally:
        time.sleep(0.3)
        w.stop.set()
        w.join(timeout=30)
    assert len(w.acked) > rounds, f"too few acknowledged writes ({len(w.acked)}) to mean anything"
    wait_until(lambda: a.outbox() == 0, timeout=60, what="the primary's outbox drains")
    pa, rb = a.client(), b.client()
    def versions(sm):
        out, kwargs = {}, {}
        while True:
            page = sm.list_secret_version_ids(SecretId="remote/fault", IncludeDeprecated=True,
                                              MaxResults=100, **kwargs)
            out.update({v["VersionId"]: (tuple(v.get("VersionStages", [])), v["CreatedDate"])
                        for v in page["Versions"]})
            if not page.get("NextToken"):
                return out
            kwargs = {"NextToken": page["NextToken"]}
    want = versions(pa)
    wait_until(lambda: versions(rb) == want, timeout=30,
               what="the replica's versions, labels and dates equal the primary's")
    # Every acknowledged write that the primary still keeps is on the replica with its value,
    # and the last acknowledged one is current on both (the writes were in order).
    kept = [(t, v) for t, v in w.acked if t in want]
    assert len(kept) >= min(len(w.acked), 90), (len(kept), len(w.acked))
    for t, v in kept:
        assert rb.get_secret_value(SecretId="remote/fault", VersionId=t)["SecretString"] == v
    # The replica's current version is the primary's: the last acknowledged write, or a
    # later one that landed while its answer was lost to a kill.
    pcur = pa.get_secret_value(SecretId="remote/fault")
    cur = rb.get_secret_value(SecretId="remote/fault")
    assert (cur["VersionId"], cur["SecretString"]) == (pcur["VersionId"], pcur["SecretString"])
    last_t, _ = w.acked[-1]
    assert last_t in want
