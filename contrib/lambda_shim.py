#!/usr/bin/env python3
"""Runs an AWS Lambda-style rotation handler as an Arca local command.

Arca invokes a `command` rotation function with the rotation event as JSON on stdin and,
in the environment, AWS_ENDPOINT_URL (Arca itself), AWS_REGION and short-lived
credentials that may act on the secret being rotated only. boto3 reads all of these, so a
handler written for Lambda (`def lambda_handler(event, context)`) runs unmodified:

    arca rotation-function add --arn arn:aws:lambda:us-east-1:123456789012:function:rotate \
        -- python3 /path/to/lambda_shim.py my_rotation.lambda_handler

The handler's module is imported from the current directory, PYTHONPATH, or the directory
given with --path. Exit status 0 reports success; an exception reports failure (only its
type is printed, since messages may carry secret values).
"""

import argparse
import importlib
import json
import sys
import time
import uuid


class Context:
    """The parts of the Lambda context object rotation handlers use."""

    def __init__(self, name: str, timeout_s: float):
        self.function_name = name
        self.function_version = "$LATEST"
        self.aws_request_id = str(uuid.uuid4())
        self.memory_limit_in_mb = 128
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("handler", help="module.function, e.g. lambda_function.lambda_handler")
    parser.add_argument("--path", action="append", default=[], help="extra import directory")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds the context reports")
    args = parser.parse_args()
    sys.path[:0] = args.path + ["."]
    module_name, _, func_name = args.handler.rpartition(".")
    if not module_name:
        print("handler must be module.function", file=sys.stderr)
        return 2
    handler = getattr(importlib.import_module(module_name), func_name)
    event = json.load(sys.stdin)
    try:
        handler(event, Context(args.handler, args.timeout))
    except Exception as e:  # noqa: BLE001 - report any failure as the step's failure
        print(f"rotation handler raised {type(e).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
