"""The WebSocket client side the test scripts share, on a plain socket: the upgrade and masked text frames.

The scripts misbehave on purpose (never pong, never read), which no client library allows.
"""
import base64
import os
import struct


def upgrade(sock, host, port, path):
    """Sends the upgrade request for `path` and reads the answer's head one byte at a time, so nothing
    after it (the server's first frames) is consumed. Fails unless the answer is 101."""
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        byte = sock.recv(1)
        assert byte, "the server closed the socket during the upgrade"
        response += byte
    assert response.startswith(b"HTTP/1.1 101"), response[:200]


def frame(text):
    """A masked text frame, as a client must send."""
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    n = len(payload)
    if n < 126:
        header += bytes([0x80 | n])
    else:
        header += bytes([0x80 | 126]) + struct.pack(">H", n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
