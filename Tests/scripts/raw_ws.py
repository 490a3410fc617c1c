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
    return masked(0x81, text.encode())


def masked(first_byte, payload, length_field=None):
    """A masked frame: `first_byte` holds FIN and the opcode; `length_field` announces another length than the
    payload's (a frame the test cuts short)."""
    mask = os.urandom(4)
    n = len(payload) if length_field is None else length_field
    if n < 126:
        header = bytes([first_byte, 0x80 | n])
    elif n < 1 << 16:
        header = bytes([first_byte, 0x80 | 126]) + struct.pack(">H", n)
    else:
        header = bytes([first_byte, 0x80 | 127]) + struct.pack(">Q", n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_code(data):
    """The code of the close frame among the server frames in `data` (unmasked, as a server sends), or None."""
    i = 0
    while i + 2 <= len(data):
        opcode, length = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if length == 126:
            length = struct.unpack(">H", data[i:i + 2])[0]
            i += 2
        elif length == 127:
            length = struct.unpack(">Q", data[i:i + 8])[0]
            i += 8
        if opcode == 0x8 and length >= 2 and i + 2 <= len(data):
            return struct.unpack(">H", data[i:i + 2])[0]
        i += length
    return None
