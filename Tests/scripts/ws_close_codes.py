"""Broken WebSocket input that must close the connection with a documented code (docs/PROTOCOL.md,
"Limits and errors"), each on a fresh lobby socket.

usage: ws_close_codes.py HOST PORT
Prints one line per case: '<case> close <code>' with the close code the server sent, or '<case> no close'.
Then a message sent in two frames (a text frame and a continuation): 'fragmented_message answered' when its
pong comes back.
"""
import socket
import struct
import sys

from raw_ws import close_code, masked, upgrade


def read_close_code(sock):
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
    return close_code(data)


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
        code = read_close_code(sock)
        print(f"{name} close {code}" if code is not None else f"{name} no close", flush=True)
        sock.close()

    sock = socket.create_connection((host, int(port)), timeout=5)
    upgrade(sock, host, port, "/ws/lobby")
    text = b'{"event":"ping","data":{"timestamp":7}}'
    sock.sendall(masked(0x01, text[:10]) + masked(0x80, text[10:]))
    received = b""
    sock.settimeout(10)
    try:
        while b'"pong"' not in received:
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    except OSError:
        pass
    print("fragmented_message answered" if b'"pong"' in received else "fragmented_message unanswered", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
