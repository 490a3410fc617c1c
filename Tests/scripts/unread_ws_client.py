"""A WebSocket client on the lobby that sends pings and never reads the answers.

usage: unread_ws_client.py HOST PORT PINGS GO_FILE
Its receive buffer is small, so the server's answers pile up on the server. After sending it waits (60 s at
most) until GO_FILE exists, then reads what arrived and prints 'ended' when the server closed the socket (end
of file or a reset), else 'still open'.
"""
import os
import socket
import sys
import time

from raw_ws import close_code, frame, upgrade


def main(host, port, pings, go_file):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(5)
    sock.connect((host, int(port)))
    upgrade(sock, host, port, "/ws/lobby")
    ping = frame('{"event":"ping","data":{"timestamp":1}}')
    sock.settimeout(30)  # a busy server may read slowly for a while; only its close ends the sending early
    sent = 0
    try:
        for _ in range(int(pings) // 1000):
            sock.sendall(ping * 1000)
            sent += 1000
    except OSError as error:  # the server closed the socket while we were still sending
        print(f"send stopped after {sent}: {error}", flush=True)
    print(f"sent {sent}", flush=True)
    deadline = time.monotonic() + 60
    while not os.path.exists(go_file) and time.monotonic() < deadline:
        time.sleep(0.02)
    # Read everything the server wrote before it closed: the close frame is last.
    data = b""
    ended = False
    sock.settimeout(10)
    try:
        while True:
            chunk = sock.recv(1 << 20)
            if not chunk:
                ended = True
                break
            data += chunk
    except ConnectionResetError:
        ended = True
    except OSError:
        pass
    code = close_code(data)
    print(f"read {len(data)} bytes", flush=True)
    if code is not None:
        print(f"close code {code}", flush=True)
    print("ended" if ended else "still open", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
