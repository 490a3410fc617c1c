"""An independent Standard Webhooks verifier (Python's hmac, not our Swift code).

usage: verify_standard_webhook.py SECRET MSG_ID TIMESTAMP SIGNATURE_HEADER < BODY
Exits 0 when one of the header's v1 signatures is the HMAC-SHA256 of "id.timestamp.body"
under the secret's key (whsec_ prefix, base64), else 1.
"""
import base64
import hashlib
import hmac
import sys


def main(secret, msg_id, timestamp, header):
    body = sys.stdin.buffer.read()
    key = base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else secret.encode()
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()).decode()
    for part in header.split(" "):
        version, _, signature = part.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            print("valid")
            return 0
    print("invalid")
    return 1


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
