"""Checks recorded WebSocket messages against docs/protocol.schema.json with the
`jsonschema` package (Debian: python3-jsonschema), independent of our Swift code.

usage: validate_protocol.py SCHEMA TRANSCRIPT
TRANSCRIPT is JSON lines {"direction": "server" | "client", "message": {...}}.
Each message is validated against $defs/serverMessage or $defs/clientMessage of
its direction, after a lookup of its event so an unknown event is named as such.
Prints one line per problem (at most 40), then a last line
{"messages": N, "problems": N, "server_events": [...], "client_events": [...]}.
Exits 1 when any message breaks the schema.
"""
import json
import sys

from jsonschema import Draft202012Validator


def main(schema_path, transcript_path):
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    validators = {}
    for direction in ("server", "client"):
        envelopes = schema["$defs"][f"{direction}Message"]["oneOf"]
        for event in schema["$defs"][direction]:
            index = next(i for i, e in enumerate(envelopes) if e["properties"]["event"]["const"] == event)
            # The document itself with its root pointing at one envelope: local $refs resolve on any jsonschema version.
            root = {k: v for k, v in schema.items() if k != "anyOf"}
            root["$ref"] = f"#/$defs/{direction}Message/oneOf/{index}"
            validators[(direction, event)] = Draft202012Validator(root)
    problems = []
    seen = {"server": set(), "client": set()}
    count = 0
    with open(transcript_path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            direction, message = record["direction"], record["message"]
            count += 1
            event = message.get("event") if isinstance(message, dict) else None
            validator = validators.get((direction, event))
            if validator is None:
                problems.append(f"line {number}: {direction} event {event!r} is not in the schema: {json.dumps(message)[:300]}")
                continue
            seen[direction].add(event)
            for error in sorted(validator.iter_errors(message), key=lambda e: list(e.absolute_path)):
                path = "/".join(str(p) for p in error.absolute_path)
                problems.append(f"line {number}: {direction} {event} at /{path}: {error.message[:300]}")
    for problem in problems[:40]:
        print(problem)
    print(json.dumps({"messages": count, "problems": len(problems),
                      "server_events": sorted(seen["server"]), "client_events": sorted(seen["client"])}))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
