#!/usr/bin/python3
"""Answers a client never reads, on an HTTP/1.1 port, from the source address $FLOOD_SOURCE
(default 127.0.0.2, so that a proxy tells the attacker from other clients): bounded in time and
bytes, against 127.0.0.1 only. Prints one JSON line of what it sent and how the server answered.

  http_answers.py PORT SECONDS   $FLOOD_CONNECTIONS (default 50) connections with a 4 KiB receive
                                 buffer, each sending $FLOOD_PIPELINE (default 20) pipelined
                                 GET $FLOOD_TARGET (default /v1/items?pageSize=1000) and reading
                                 nothing; then, while they are held, one well-formed GET of
                                 $FLOOD_HONEST_TARGET (default /v1/items/1) every half second
                                 from 127.0.0.1, its answer read; all held for SECONDS
"""
import json
import os
import socket
import sys
import time

SOURCE = os.environ.get("FLOOD_SOURCE", "127.0.0.2")


def honest_get(port, target):
    """The status code of one GET that reads its whole answer, or "none" / "closed"."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.1", 0))
    try:
        sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: hotpath\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        return "none"
    except OSError:
        return "closed"
    finally:
        sock.close()
    parts = data.split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 else "closed"


def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    connections = int(os.environ.get("FLOOD_CONNECTIONS", "50"))
    pipeline = int(os.environ.get("FLOOD_PIPELINE", "20"))
    target = os.environ.get("FLOOD_TARGET", "/v1/items?pageSize=1000").encode()
    honest_target = os.environ.get("FLOOD_HONEST_TARGET", "/v1/items/1").encode()
    request = b"GET " + target + b" HTTP/1.1\r\nHost: hotpath\r\n\r\n"
    end = time.monotonic() + seconds
    held, sent = [], 0
    for _ in range(connections):
        if time.monotonic() >= end:
            break
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the window
        sock.bind((SOURCE, 0))
        sock.settimeout(5)
        try:
            sock.connect(("127.0.0.1", port))
            sock.sendall(request * pipeline)
            sent += pipeline
        except OSError:
            pass  # refused, or the server stopped reading
        held.append(sock)
    honest = {}
    while time.monotonic() < end:
        code = honest_get(port, honest_target)
        honest[code] = honest.get(code, 0) + 1
        time.sleep(max(0.0, min(0.5, end - time.monotonic())))
    for sock in held:
        sock.close()
    print(json.dumps({"attack": "rest_answers", "connections": len(held), "requests": sent,
                      "honest_gets": honest}))


if __name__ == "__main__":
    main()
