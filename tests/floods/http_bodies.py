#!/usr/bin/python3
"""Request bodies left unfinished on an HTTP/1.1 port, from the source address $FLOOD_SOURCE
(default 127.0.0.2, so that a proxy tells the attacker from other clients): bounded in time and
bytes, against 127.0.0.1 only. Prints one JSON line of what it sent and how the server answered.

  http_bodies.py PORT SECONDS   $FLOOD_BODIES (default 200) connections, each a POST /v1/items
                                declaring a body of $FLOOD_BODY_BYTES (default 1,000,000) and sent
                                all of it but its last byte; then, while they are held, one
                                well-formed create a second from 127.0.0.1; all held for SECONDS
"""
import json
import os
import socket
import sys
import time

SOURCE = os.environ.get("FLOOD_SOURCE", "127.0.0.2")


def status_of(sock, wait):
    """The status code of what the server answered within wait seconds; "none" or "closed"."""
    sock.settimeout(wait)
    try:
        data = sock.recv(256)
    except socket.timeout:
        return "none"
    except OSError:
        return "closed"
    if not data:
        return "closed"
    parts = data.split(b" ", 2)
    return parts[1].decode() if len(parts) > 1 else "garbled"


def create(port, n):
    body = json.dumps({"sku": f"HONEST-{os.getpid()}-{n}", "name": "Lamp", "category": "home",
                       "priceCents": 100, "stock": 1}).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.1", 0))
    sock.sendall(b"POST /v1/items HTTP/1.1\r\nHost: hotpath\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    code = status_of(sock, 5)
    sock.close()
    return code


def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    bodies = int(os.environ.get("FLOOD_BODIES", "200"))
    size = int(os.environ.get("FLOOD_BODY_BYTES", "1000000"))
    request = (b"POST /v1/items HTTP/1.1\r\nHost: hotpath\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(size).encode() + b"\r\n\r\n" + b" " * (size - 1))
    end = time.monotonic() + seconds
    held, sent = [], 0
    for _ in range(bodies):
        if time.monotonic() >= end:
            break
        sock = socket.create_connection(("127.0.0.1", port), timeout=5,
                                        source_address=(SOURCE, 0))
        try:
            sock.sendall(request)
            sent += len(request)
        except OSError:
            pass  # refused and closed before all of it was sent
        held.append(sock)
    answers = {}
    for sock in held:
        code = status_of(sock, 0.01)
        answers[code] = answers.get(code, 0) + 1
    honest = {}
    n = 0
    while time.monotonic() < end:
        code = create(port, n)
        honest[code] = honest.get(code, 0) + 1
        n += 1
        time.sleep(max(0.0, min(1.0, end - time.monotonic())))
    for sock in held:
        sock.close()
    print(json.dumps({"attack": "rest_bodies", "bodies": len(held),
                      "sent_mib": round(sent / (1 << 20), 1), "answers_at_once": answers,
                      "honest_creates": honest}))


if __name__ == "__main__":
    main()
