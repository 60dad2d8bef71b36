"""Shared helpers for the end-to-end suite: test credentials, error assertions, ARN
checks, polling, and a raw SigV4 client (botocore's signer + requests) for requests
that boto3 would never send (no idempotency token, bad signatures, bad JSON)."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from dataclasses import dataclass
from unittest import mock

import botocore.auth
import pytest
import requests
from botocore.auth import SigV4Auth, SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

ACCESS_KEY = "AKIAARCAE2ETEST00001"
SECRET_KEY = "arca-e2e/secret+key0123456789abcdefghij"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"

ARN_RE = re.compile(
    r"^arn:aws:secretsmanager:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):secret:"
    r"(?P<name>.+)-(?P<suffix>[A-Za-z0-9]{6})$"
)

# AWS's documentation does not say which error code a violation of a botocore-model
# constraint (length, range, pattern, missing member) produces. AWS's front end answers
# some of them with ValidationException (recorded for invalid secret names), Secrets
# Manager itself with InvalidParameterException. Where the docs are silent we accept
# either, always with HTTP 400.
VALIDATION_CODES = ("InvalidParameterException", "ValidationException")


def token() -> str:
    """A ClientRequestToken (32-64 chars); a UUID like the SDKs generate."""
    return str(uuid.uuid4())


def expect_error(code, fn, *args, status: int = 400, **kwargs) -> ClientError:
    """Call fn and assert it fails with the given error code (or one of a tuple) and status."""
    with pytest.raises(ClientError) as info:
        fn(*args, **kwargs)
    err = info.value.response
    got = err["Error"]["Code"]
    codes = code if isinstance(code, tuple) else (code,)
    assert got in codes, f"expected {codes}, got {got}: {err['Error'].get('Message')}"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == status, err["ResponseMetadata"]
    return info.value


def error_message(e: ClientError) -> str:
    return e.response["Error"].get("Message", "")


def parse_arn(arn: str) -> dict:
    m = ARN_RE.match(arn)
    assert m, f"not a Secrets Manager secret ARN: {arn}"
    return m.groupdict()


def lookup_trail(ct, **attr) -> list[dict]:
    """Every CloudTrail record LookupEvents answers (with at most one lookup attribute,
    e.g. EventName="InvokeTarget"), oldest first."""
    out, kw = [], {}
    if attr:
        (k, v), = attr.items()
        kw["LookupAttributes"] = [{"AttributeKey": k, "AttributeValue": v}]
    while True:
        page = ct.lookup_events(MaxResults=50, **kw)
        out += [json.loads(e["CloudTrailEvent"]) for e in page["Events"]]
        if "NextToken" not in page:
            return out[::-1]
        kw["NextToken"] = page["NextToken"]


def wait_until(pred, timeout: float = 10.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = pred()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def secret_gone(sm, secret_id: str) -> bool:
    try:
        sm.describe_secret(SecretId=secret_id)
    except ClientError as e:
        if e.response["Error"]["Code"] == "ResourceNotFoundException":
            return True
        raise
    return False


def create_after_purge(sm, **kwargs):
    """CreateSecret, retrying while a just-force-deleted name is still being purged
    (AWS documents force deletion as asynchronous: 'use appropriate back off')."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return sm.create_secret(**kwargs)
        except ClientError as e:
            if e.response["Error"]["Code"] != "InvalidRequestException" or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def midnight_utc(t: dt.datetime) -> dt.datetime:
    t = t.astimezone(dt.timezone.utc)
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def list_all(sm, **kwargs) -> list[dict]:
    out, next_token = [], None
    while True:
        args = dict(kwargs)
        if next_token:
            args["NextToken"] = next_token
        page = sm.list_secrets(**args)
        out.extend(page["SecretList"])
        next_token = page.get("NextToken")
        if not next_token:
            return out


def names(entries) -> list[str]:
    return [e["Name"] for e in entries]


@dataclass
class RawResponse:
    status: int
    body: bytes
    headers: dict

    @property
    def json(self) -> dict:
        return json.loads(self.body.decode("utf-8"))

    @property
    def error_type(self) -> str:
        """The bare error name: AWS may send `__type` as `namespace#Name`."""
        t = self.json.get("__type", "")
        return t.rsplit("#", 1)[-1]

    @property
    def message(self) -> str:
        j = self.json
        return j.get("message") or j.get("Message") or ""


class _QueryAuthKeepingBody(SigV4QueryAuth):
    """botocore's presigner moves a body into the query string (query-protocol style);
    for awsJson the body must stay and its hash is signed, so keep it."""

    def _modify_request_before_signing(self, request):
        body = request.data
        request.data = ""
        try:
            super()._modify_request_before_signing(request)
        finally:
            request.data = body


class RawClient:
    """Hand-built awsJson1_1 requests, signed (or not) with botocore's SigV4 signer."""

    def __init__(self, endpoint: str, verify: str | bool = True):
        self.endpoint = endpoint
        self.verify = verify

    def build(self, target: str | None, body, *, region: str = REGION, service: str = "secretsmanager",
              access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, sign: bool = True,
              presign: bool = False, when: dt.datetime | None = None, extra_headers: dict | None = None,
              content_type: str = "application/x-amz-json-1.1"):
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = body
        headers = {"Content-Type": content_type}
        if target is not None:
            headers["X-Amz-Target"] = target if "." in target else f"secretsmanager.{target}"
        headers.update(extra_headers or {})
        req = AWSRequest(method="POST", url=self.endpoint + "/", data=data, headers=headers)
        if sign:
            creds = Credentials(access_key, secret_key)
            signer = (_QueryAuthKeepingBody(creds, service, region, expires=300) if presign
                      else SigV4Auth(creds, service, region))
            if when is not None:
                with mock.patch.object(botocore.auth, "get_current_datetime", lambda *a, **k: when):
                    signer.add_auth(req)
            else:
                signer.add_auth(req)
        return req.prepare()

    def send(self, prepared) -> RawResponse:
        r = requests.request(prepared.method, prepared.url, headers=dict(prepared.headers),
                             data=prepared.body, timeout=30, verify=self.verify)
        return RawResponse(r.status_code, r.content, dict(r.headers))

    def call(self, target: str | None, body, **kwargs) -> RawResponse:
        return self.send(self.build(target, body, **kwargs))


@dataclass
class CliResult:
    cmd: list
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self):
        assert self.returncode == 0, f"aws CLI failed ({self.returncode}): {self.stderr}"
        return json.loads(self.stdout) if self.stdout.strip() else {}

    def ok(self):
        assert self.returncode == 0, f"{' '.join(self.cmd)}\nrc={self.returncode}\n{self.stderr}"
        return self.json
