"""Broken WebSocket input that must close the connection with a documented code (docs/PROTOCOL.md,
"Limits and errors"), each on a fresh lobby socket.

usage: ws_close_codes.py HOST PORT
Prints one line per case: '<case> close <code>' with the close code the server sent, or '<case> no close'.
"""
import os
import socket
import struct
import sys

from raw_ws import upgrade


def masked(first_byte, payload, length_field=None):
    mask = os.urandom(4)
    n = len(payload) if length_field is None else length_field
    if n < 126:
        header = bytes([first_byte, 0x80 | n])
    elif n < 1 << 16:
        header = bytes([first_byte, 0x80 | 126]) + struct.pack(">H", n)
    else:
        header = bytes([first_byte, 0x80 | 127]) + struct.pack(">Q", n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_code(sock):
    """Reads until the server closes the socket (10 s at most); the code of its close frame, if any."""
    data = b""
    sock.settimeout(10)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
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
        if opcode == 0x8 and length >= 2:
            return struct.unpack(">H", data[i:i + 2])[0]
        i += length
    return None


def main(host, port):
    cases = {
        # A frame announcing 2 MiB (over the 1 MiB frame limit): only its start is sent.
        "oversized_frame": masked(0x81, b"x" * 1000, length_field=2 << 20)[:1014],
        # A continuation frame with no message begun.
        "stray_continuation": masked(0x80, b"hi"),
        # The client closes: the server answers with a close frame.
        "client_close": masked(0x88, struct.pack(">H", 1000)),
    }
    for name, payload in cases.items():
        sock = socket.create_connection((host, int(port)), timeout=5)
        upgrade(sock, host, port, "/ws/lobby")
        sock.sendall(payload)
        code = close_code(sock)
        print(f"{name} close {code}" if code is not None else f"{name} no close", flush=True)
        sock.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
