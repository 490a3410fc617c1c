"""A WebSocket client that takes a seat and then never answers the server's pings.

usage: silent_ws_client.py HOST PORT ROOM_ID TOKEN SECONDS
Prints 'closed by server after N s' if the server drops it within SECONDS, else 'still open'.
"""
import json
import socket
import sys
import time

from raw_ws import frame, upgrade


def main(host, port, room, token, seconds):
    sock = socket.create_connection((host, int(port)), timeout=5)
    upgrade(sock, host, port, f"/ws/{room}")
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
