"""The template rotation handler, with every step's start and end written to
`$E2E_COUNT_DIR/<key>.steps` (one line each, appended atomically): what the multi-node
test counts to show that no rotation ran twice or on two nodes at once."""

import os
import time

import template_rotation


def _log(event, *words):
    key = event["SecretId"].rsplit(":", 1)[-1].replace("/", "__")
    line = " ".join([*words, event["Step"], event["ClientRequestToken"], str(os.getpid()),
                     repr(time.time())]) + "\n"
    fd = os.open(os.path.join(os.environ["E2E_COUNT_DIR"], f"{key}.steps"),
                 os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def lambda_handler(event, context):
    _log(event, "start")
    try:
        template_rotation.lambda_handler(event, context)
    except BaseException:
        _log(event, "end", "error")
        raise
    _log(event, "end", "ok")
