"""HTTPS: `arca server --tls-cert/--tls-key` (or `[tls]` in the config file) serves the API
over TLS under a throwaway CA made here. boto3 trusting that CA works end to end (and a
rotation command calling back through AWS_CA_BUNDLE); a client that does not trust it
is refused; plain HTTP to the TLS port gets no answer; a key readable by others, a key of
another certificate and a missing file stop the start with a reason that names the file
and never prints key material."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from helpers import ACCESS_KEY, REGION, SECRET_KEY, token
from conftest import arca_binary
from pki import make_pki
from rotation_helpers import (fn_arn, shim_argv, stage_holder, start_server, stop_server,
                              toml_function, toml_str, value)

CMD = fn_arn("arca-e2e-tls-command")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_config(pki: dict, key: str = "key") -> str:
    return (f"[tls]\ncert_file = {toml_str(str(pki['cert']))}\n"
            f"key_file = {toml_str(str(pki[key]))}\nca_file = {toml_str(str(pki['ca']))}\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory, pki):
    # The rotation command is the boto3 Lambda template run through the shim: it calls back
    # to Arca over HTTPS, trusting the CA only because Arca hands it AWS_CA_BUNDLE.
    config = toml_function(CMD, type="command", argv=shim_argv(), timeout_secs=30) + tls_config(pki)
    ctl = tmp_path_factory.mktemp("tls-ctl")
    srv = start_server(tmp_path_factory.mktemp("arca-tls"), config,
                       extra_env={"E2E_ROT_DIR": str(ctl)}, verify=str(pki["ca"]))
    yield srv
    stop_server(srv)


def test_boto3_over_https_trusting_the_ca(server):
    assert server.endpoint.startswith("https://127.0.0.1:")
    sm = server.client()
    sm.create_secret(Name="tls/one", SecretString="over-tls")
    assert sm.get_secret_value(SecretId="tls/one")["SecretString"] == "over-tls"
    # Errors come back over TLS like any answer.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.describe_secret(SecretId="tls/missing")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_client_that_does_not_trust_the_ca_is_refused(server):
    sm = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                               region_name=REGION).client(
        "secretsmanager", endpoint_url=server.endpoint,
        config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=5))
    with pytest.raises(botocore.exceptions.SSLError):
        sm.list_secrets()
    server.assert_alive()


def test_plain_http_to_the_tls_port_gets_no_http_answer(server):
    host, port = server.endpoint.removeprefix("https://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        s.settimeout(5)
        try:
            data = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            data = b""
    assert not data.startswith(b"HTTP/"), data[:80]
    # The server is still serving TLS clients afterwards.
    assert server.client().list_secrets()["SecretList"] is not None


def test_tls_versions_below_1_2_are_refused(server, pki):
    host, port = server.endpoint.removeprefix("https://").split(":")
    ctx = ssl.create_default_context(cafile=str(pki["ca"]))
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        with pytest.raises(ssl.SSLError):
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                pass


def test_a_rotation_command_calls_back_over_https(server):
    sm = server.client()
    arn = sm.create_secret(Name="tls/rotated", SecretString="before")["ARN"]
    tok = token()
    sm.rotate_secret(SecretId=arn, RotationLambdaARN=CMD, ClientRequestToken=tok)
    server.wait_event(arn, "RotationSucceeded", timeout=30)
    assert stage_holder(sm, arn, "AWSCURRENT") == tok
    assert value(sm, arn) != "before"


def _start_fails(tmp_path: Path, config: str) -> str:
    cfg = tmp_path / "arca.toml"
    cfg.write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARCA_"))}
    out = subprocess.run([str(arca_binary()), "server", "--dev", "--config", str(cfg), "--listen",
                          "127.0.0.1:0"], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=30, stdin=subprocess.DEVNULL)
    assert out.returncode != 0, out.stdout
    assert "listening" not in out.stdout
    return out.stdout + out.stderr


def test_a_key_readable_by_others_is_refused(tmp_path):
    pki = make_pki(tmp_path)
    pki["key"].chmod(0o644)
    text = _start_fails(tmp_path, tls_config(pki))
    assert str(pki["key"]) in text and "readable by group or others" in text, text
    assert "PRIVATE KEY" not in text


def test_a_key_of_another_certificate_is_refused(tmp_path):
    pki = make_pki(tmp_path)
    text = _start_fails(tmp_path, tls_config(pki, key="other_key"))
    assert "do not make a usable configuration" in text, text
    assert "PRIVATE KEY" not in text and pki["other_key"].read_text() not in text


def test_a_missing_certificate_is_refused(tmp_path):
    pki = make_pki(tmp_path)
    pki["cert"].unlink()
    text = _start_fails(tmp_path, tls_config(pki))
    assert str(pki["cert"]) in text, text
