"""A rotation function written for AWS Lambda, after AWS's SecretsManagerRotationTemplate:
`lambda_handler(event, context)` runs one of createSecret / setSecret / testSecret /
finishSecret with boto3, checking first that the event's token is a version of the secret
staged AWSPENDING (or already AWSCURRENT: nothing to do).

Arca runs it through contrib/lambda_shim.py (a `command` rotation function), which gives it
AWS_ENDPOINT_URL and credentials scoped to the secret being rotated; the e2e suite's HTTP
receiver runs the same `rotate` with its own client.

Test controls (no effect unless the suite sets them up): when the environment names a
directory in E2E_ROT_DIR, each invocation appends its step to `<key>.log` there, where
<key> is the last part of the secret's ARN, and
  <key>.fail.<step>   makes that step raise (the shim exits 1);
  <key>.sleep.<step>  makes that step sleep 30 s first (longer than any test timeout);
  <key>.probe         holds another secret's ARN: createSecret tries to read it and writes
                      the error code (or "ALLOWED") into <key>.probe.result;
  <key>.leak          makes createSecret write the step's credentials into <key>.creds
                      (the suite checks they stop working when the step is over).
"""

import os
import time

import boto3
from botocore.exceptions import ClientError


def lambda_handler(event, context):
    client = boto3.client("secretsmanager", endpoint_url=os.environ.get("SECRETS_MANAGER_ENDPOINT"))
    control(client, event)
    rotate(client, event)


def control(client, event):
    d = os.environ.get("E2E_ROT_DIR")
    if not d:
        return
    key = event["SecretId"].rsplit(":", 1)[-1].replace("/", "__")
    step = event["Step"]
    with open(os.path.join(d, f"{key}.log"), "a") as f:
        f.write(step + "\n")
    if os.path.exists(os.path.join(d, f"{key}.sleep.{step}")):
        time.sleep(30)
    if os.path.exists(os.path.join(d, f"{key}.fail.{step}")):
        raise RuntimeError(f"injected failure at {step}")
    if step == "createSecret" and os.path.exists(os.path.join(d, f"{key}.leak")):
        with open(os.path.join(d, f"{key}.creds"), "w") as f:
            f.write(os.environ["AWS_ACCESS_KEY_ID"] + "\n" + os.environ["AWS_SECRET_ACCESS_KEY"])
    probe = os.path.join(d, f"{key}.probe")
    if step == "createSecret" and os.path.exists(probe):
        with open(probe) as f:
            other = f.read().strip()
        results = []
        for call in (lambda: client.get_secret_value(SecretId=other),
                     lambda: client.describe_secret(SecretId=other),
                     lambda: client.list_secrets()):
            try:
                call()
                results.append("ALLOWED")
            except ClientError as e:
                results.append(e.response["Error"]["Code"])
        with open(probe + ".result", "w") as f:
            f.write("\n".join(results))


def rotate(client, event):
    arn = event["SecretId"]
    token = event["ClientRequestToken"]
    step = event["Step"]

    metadata = client.describe_secret(SecretId=arn)
    if not metadata.get("RotationEnabled"):
        raise ValueError(f"Secret {arn} is not enabled for rotation")
    versions = metadata["VersionIdsToStages"]
    if token not in versions:
        raise ValueError(f"Secret version {token} has no stage for rotation of secret {arn}.")
    if "AWSCURRENT" in versions[token]:
        return
    if "AWSPENDING" not in versions[token]:
        raise ValueError(f"Secret version {token} not set as AWSPENDING for rotation of secret {arn}.")

    if step == "createSecret":
        create_secret(client, arn, token)
    elif step == "setSecret":
        pass  # nothing outside Secrets Manager holds this secret
    elif step == "testSecret":
        test_secret(client, arn, token)
    elif step == "finishSecret":
        finish_secret(client, arn, token)
    else:
        raise ValueError("Invalid step parameter")


def create_secret(client, arn, token):
    client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
    try:
        client.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    except client.exceptions.ResourceNotFoundException:
        exclude = os.environ.get("EXCLUDE_CHARACTERS", "/@\"'\\")
        passwd = client.get_random_password(ExcludeCharacters=exclude)
        client.put_secret_value(SecretId=arn, ClientRequestToken=token,
                                SecretString=passwd["RandomPassword"], VersionStages=["AWSPENDING"])


def test_secret(client, arn, token):
    value = client.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    if not value.get("SecretString"):
        raise ValueError("the pending version has no value")


def finish_secret(client, arn, token):
    metadata = client.describe_secret(SecretId=arn)
    current_version = None
    for version, stages in metadata["VersionIdsToStages"].items():
        if "AWSCURRENT" in stages:
            if version == token:
                return
            current_version = version
            break
    client.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                       MoveToVersionId=token, RemoveFromVersionId=current_version)
