"""A WebSocket client that takes a seat and then never answers the server's pings.

usage: silent_ws_client.py HOST PORT ROOM_ID TOKEN SECONDS
Prints 'closed by server after N s' if the server drops it within SECONDS, else 'still open'.
"""
import base64
import json
import os
import socket
import struct
import sys
import time


def frame(text):
    payload = text.encode()
    mask = os.urandom(4)
    header = bytes([0x81])
    n = len(payload)
    if n < 126:
        header += bytes([0x80 | n])
    else:
        header += bytes([0x80 | 126]) + struct.pack(">H", n)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def main(host, port, room, token, seconds):
    sock = socket.create_connection((host, int(port)), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/{room} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(4096)
    assert response.startswith(b"HTTP/1.1 101"), response[:200]
    sock.sendall(frame(json.dumps({"event": "client_ready", "data": {"token": token}})))
    print("seated", flush=True)
    started = time.time()
    sock.settimeout(0.2)
    while time.time() - started < float(seconds):
        try:
            data = sock.recv(65536)   # read (and ignore) everything, pings included: never pong
        except socket.timeout:
            continue
        if not data:
            print(f"closed by server after {time.time() - started:.1f} s", flush=True)
            return
    print("still open", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
