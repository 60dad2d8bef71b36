"""The seed article's function: on a RotationSucceeded event, read the secret's new value
in the primary region and write it into the same-named secret in the backup region
(created there if missing). A Lambda-style handler, run by Arca's command target through
contrib/lambda_shim.py with the event on stdin and credentials limited to that name."""

import os

import boto3

BACKUP_REGION = os.environ.get("E2E_BACKUP_REGION", "us-west-2")


def lambda_handler(event, context):
    arn = event["detail"]["additionalEventData"]["SecretId"]
    primary = boto3.client("secretsmanager", region_name=event["region"])
    current = primary.get_secret_value(SecretId=arn)
    backup = boto3.client("secretsmanager", region_name=BACKUP_REGION)
    try:
        backup.put_secret_value(SecretId=current["Name"], SecretString=current["SecretString"])
    except backup.exceptions.ResourceNotFoundException:
        backup.create_secret(Name=current["Name"], SecretString=current["SecretString"])
