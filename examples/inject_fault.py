"""Fault injection recipes for the simulator, through its REST API (standard library only).

    python examples/inject_fault.py busy --unit 1 --count 5     # the next 5 requests to unit 1 get exception 06
    python examples/inject_fault.py --list                      # the rules in force
    python examples/inject_fault.py --clear                     # end them all
    python examples/inject_fault.py --api http://127.0.0.1:8080 ...

Each recipe is the body of ``POST /api/faults``; the options narrow it to a
unit, function codes or an address range, and end it after a count of
requests or a duration.  The same with curl::

    curl -X POST http://127.0.0.1:8080/api/faults -H 'Content-Type: application/json' \\
         -d '{"effect": "exception", "exception_code": 6, "unit": 1, "count": 5}'
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

RECIPES: dict[str, dict[str, Any]] = {
    # The device answers "server device busy" (exception 06): clients should retry later.
    "busy": {"effect": "exception", "exception_code": 6},
    # The device fails (exception 04, server device failure).
    "failure": {"effect": "exception", "exception_code": 4},
    # A gateway's target is gone (exception 0B): what a TCP-to-RTU gateway answers for a dead device.
    "gateway-timeout": {"effect": "exception", "exception_code": 0x0B},
    # The device is off the line: no answer at all, the client times out.
    "offline": {"effect": "no_answer"},
    # One request in three gets no answer: for retry logic.
    "flaky": {"effect": "no_answer", "probability": 0.33},
    # Answers arrive late (1.5 s): for client timeouts that are too short.
    "slow": {"effect": "delay", "delay": 1.5},
    # Random bytes instead of the answer: the client must discard them and not crash.
    "garbage": {"effect": "junk", "junk_length": 12},
    # The answer in 3 pieces, 0.2 s apart: the client must reassemble a response split across reads.
    "fragmented": {"effect": "split", "pieces": 3, "pause": 0.2},
}


def call(api: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        api.rstrip("/") + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise SystemExit(f"{method} {path}: {error.code} {json.load(error).get('error', '')}") from None


def main() -> int:
    parser = argparse.ArgumentParser(description="Inject faults into the simulator's Modbus traffic.")
    parser.add_argument("recipe", nargs="?", choices=sorted(RECIPES), help="what to inject")
    parser.add_argument("--api", default="http://127.0.0.1:8080", help="the simulator's web address")
    parser.add_argument("--unit", type=int, help="only requests to this unit id")
    parser.add_argument("--function", type=int, action="append", help="only this function code (repeatable)")
    parser.add_argument("--addresses", metavar="FIRST-LAST", help="only requests touching this address range")
    parser.add_argument("--server", help="only this listener of the simulator")
    parser.add_argument("--count", type=int, help="end after this many requests")
    parser.add_argument("--duration", type=float, help="end after this many seconds")
    parser.add_argument("--list", action="store_true", help="print the fault rules")
    parser.add_argument("--clear", action="store_true", help="end every fault rule")
    args = parser.parse_args()

    if args.clear:
        print(f"ended {call(args.api, 'DELETE', '/api/faults')['removed']} rule(s)")
        return 0
    if args.list or args.recipe is None:
        for rule in call(args.api, "GET", "/api/faults")["items"]:
            print(json.dumps(rule))
        return 0
    body = dict(RECIPES[args.recipe])
    if args.addresses:
        first, _, last = args.addresses.partition("-")
        body["address_first"], body["address_last"] = int(first), int(last or first)
    for key, value in (
        ("unit", args.unit),
        ("functions", args.function),
        ("server", args.server),
        ("count", args.count),
        ("duration", args.duration),
    ):
        if value is not None:
            body[key] = value
    rule = call(args.api, "POST", "/api/faults", body)
    print(f"fault rule {rule['id']}: {json.dumps(body)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
