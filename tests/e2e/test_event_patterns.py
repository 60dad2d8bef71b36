"""EventBridge's TestEventPattern on Arca's endpoint, through boto3 and the aws CLI, over
the table of documented pattern cases that arca-core's matcher is unit-tested on
(crates/arca-core/src/events/pattern_cases.json)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import REPO, _aws_executable
from helpers import ACCESS_KEY, REGION, SECRET_KEY, RawClient

CASES = json.loads((REPO / "crates/arca-core/src/events/pattern_cases.json").read_text())


def _event(case: dict) -> dict:
    event = dict(CASES["base"])
    event.update(case["event"])
    return event


@pytest.fixture
def events(server):
    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION,
    ).client("events", endpoint_url=server.endpoint, config=Config(retries={"max_attempts": 1}))


def test_every_documented_case_answers_as_eventbridge(events):
    assert len(CASES["cases"]) >= 40
    for case in CASES["cases"]:
        kwargs = dict(EventPattern=json.dumps(case["pattern"]), Event=json.dumps(_event(case)))
        if case.get("invalid"):
            with pytest.raises(ClientError) as e:
                events.test_event_pattern(**kwargs)
            assert e.value.response["Error"]["Code"] == "InvalidEventPatternException", case["name"]
            assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        else:
            got = events.test_event_pattern(**kwargs)["Result"]
            assert got is case["match"], case["name"]


def test_an_event_without_its_mandatory_fields_is_refused(events):
    event = dict(CASES["base"])
    del event["detail-type"]
    with pytest.raises(ClientError) as e:
        events.test_event_pattern(EventPattern='{"source": ["aws.ec2"]}', Event=json.dumps(event))
    assert e.value.response["Error"]["Code"] == "InvalidEventPatternException"
    with pytest.raises(ClientError) as e:
        events.test_event_pattern(EventPattern='{"source": ["aws.ec2"]}', Event="not json")
    assert e.value.response["Error"]["Code"] == "InvalidEventPatternException"


def test_other_eventbridge_operations_are_unknown_and_signing_is_checked(server, events):
    with pytest.raises(ClientError) as e:
        events.list_event_buses()
    assert e.value.response["Error"]["Code"] == "UnknownOperationException"
    r = RawClient(server.endpoint).call("AWSEvents.TestEventPattern",
                                        {"EventPattern": "{}", "Event": "{}"})
    assert r.error_type == "InvalidSignatureException", "signed for secretsmanager, not events"


def test_aws_cli_test_event_pattern(server, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY,
               AWS_CONFIG_FILE=str(tmp_path / "c"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "k"),
               AWS_EC2_METADATA_DISABLED="true", AWS_PAGER="")
    case = next(c for c in CASES["cases"] if c["name"] == "Secrets Manager rotation succeeded")
    out = subprocess.run(
        [_aws_executable(), "events", "test-event-pattern", "--endpoint-url", server.endpoint,
         "--region", REGION, "--output", "json",
         "--event-pattern", json.dumps(case["pattern"]), "--event", json.dumps(_event(case))],
        env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"Result": True}
