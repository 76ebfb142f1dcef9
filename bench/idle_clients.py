#!/usr/bin/env python3
"""Open N PostgreSQL client connections, log each one in, then sit idle.

Speaks just enough of the v3 protocol: StartupMessage, then trust / cleartext / md5 / SCRAM-SHA-256
authentication, until ReadyForQuery. Non-blocking sockets on one selector, at most --window logins in
flight at once (so the listen backlog never overflows). When every connection has either reached
ReadyForQuery or failed (and, with --query, has run one query), prints one line "READY ok=<n> failed=<n> seconds=<s>" to stdout (and to
--ready-file), then holds the connections open until SIGTERM/SIGINT or --hold seconds pass.
Standard library only.
"""
import argparse
import base64
import hashlib
import hmac
import os
import selectors
import signal
import socket
import struct
import sys
import time


def msg(kind, payload):
    return kind + struct.pack("!I", len(payload) + 4) + payload


class Scram:
    salted = {}  # (password, salt, iterations) -> salted password; one PBKDF2 per run, not per connection

    def __init__(self, user, password):
        self.password = password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = "n=,r=" + self.nonce

    def initial(self):
        first = ("n,," + self.first_bare).encode()
        return msg(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(first)) + first)

    def final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        salt, iters = base64.b64decode(attrs["s"]), int(attrs["i"])
        key = (self.password, salt, iters)
        if key not in Scram.salted:
            Scram.salted[key] = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, iters)
        salted = Scram.salted[key]
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        auth_message = ",".join([self.first_bare, server_first, without_proof]).encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        return msg(b"p", (without_proof + ",p=" + base64.b64encode(proof).decode()).encode())


class Conn:
    def __init__(self, args):
        self.args = args
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.out = b""
        self.inbuf = b""
        self.state = "connecting"  # connecting -> login -> ready | failed
        self.scram = None
        self.error = ""
        params = b"user\0" + args.user.encode() + b"\0database\0" + args.dbname.encode() + b"\0\0"
        self.out = struct.pack("!II", len(params) + 8, 196608) + params

    def on_auth(self, payload):
        code = struct.unpack("!I", payload[:4])[0]
        a = self.args
        if code == 0:
            return
        if code == 3:
            self.out += msg(b"p", a.password.encode() + b"\0")
        elif code == 5:
            inner = hashlib.md5((a.password + a.user).encode()).hexdigest().encode()
            self.out += msg(b"p", b"md5" + hashlib.md5(inner + payload[4:8]).hexdigest().encode() + b"\0")
        elif code == 10:
            self.scram = Scram(a.user, a.password)
            self.out += self.scram.initial()
        elif code == 11:
            self.out += self.scram.final(payload[4:].decode())
        elif code == 12:
            pass
        else:
            raise RuntimeError("unsupported auth request %d" % code)

    def feed(self, data):
        self.inbuf += data
        while len(self.inbuf) >= 5:
            kind = self.inbuf[:1]
            length = struct.unpack("!I", self.inbuf[1:5])[0]
            if len(self.inbuf) < 1 + length:
                return
            payload, self.inbuf = self.inbuf[5:1 + length], self.inbuf[1 + length:]
            if kind == b"R":
                self.on_auth(payload)
            elif kind == b"E":
                fields = dict((f[:1], f[1:]) for f in payload.split(b"\0") if f)
                raise RuntimeError((fields.get(b"C", b"") + b" " + fields.get(b"M", b"")).decode(errors="replace"))
            elif kind == b"Z":
                self.state = "ready"
                return


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--user", default="bench")
    p.add_argument("--password", default=os.environ.get("PGPASSWORD", ""))
    p.add_argument("--dbname", default="bench")
    p.add_argument("-n", "--count", type=int, required=True)
    p.add_argument("--window", type=int, default=100, help="logins in flight at once")
    p.add_argument("--timeout", type=float, default=120, help="give up on logins after this many seconds")
    p.add_argument("--hold", type=float, default=300, help="exit after holding this many seconds")
    p.add_argument("--ready-file", default="")
    p.add_argument("--query", action="store_true",
                   help="after all logins, each client runs one query (SELECT 1) before READY is reported")
    args = p.parse_args()

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    sel = selectors.DefaultSelector()
    started = time.monotonic()
    pending, ok, failed, errors = 0, [], 0, {}
    next_index = 0

    def finish(c, err=None):
        nonlocal pending, failed
        pending -= 1
        sel.unregister(c.sock)
        if err is None:
            ok.append(c)
        else:
            failed += 1
            errors[err] = errors.get(err, 0) + 1
            c.sock.close()

    while (next_index < args.count or pending) and not stop:
        while next_index < args.count and pending < args.window:
            c = Conn(args)
            next_index += 1
            pending += 1
            try:
                c.sock.connect_ex((args.host, args.port))
                sel.register(c.sock, selectors.EVENT_WRITE, c)
            except OSError as e:  # e.g. EMFILE
                pending -= 1
                failed += 1
                errors[str(e)] = errors.get(str(e), 0) + 1
                c.sock.close()
        if time.monotonic() - started > args.timeout:
            break
        for key, events in sel.select(timeout=1.0):
            c = key.data
            try:
                if c.state == "connecting":
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err))
                    c.state = "login"
                if events & selectors.EVENT_WRITE and c.out:
                    sent = c.sock.send(c.out)
                    c.out = c.out[sent:]
                if events & selectors.EVENT_READ:
                    data = c.sock.recv(65536)
                    if not data:
                        raise RuntimeError("connection closed during login")
                    c.feed(data)
                if c.state == "ready":
                    finish(c)
                    continue
                sel.modify(c.sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0), c)
            except (OSError, RuntimeError, KeyError, ValueError) as e:
                finish(c, str(e)[:120])
    failed += pending
    if pending:
        errors["login timed out"] = pending
    if args.query and not stop:
        # One query on every client, all sent before any answer is read, then each waits for its ReadyForQuery.
        alive = []
        for c in ok:
            try:
                c.sock.setblocking(True)
                c.sock.settimeout(max(1.0, args.timeout - (time.monotonic() - started)))
                c.sock.sendall(msg(b"Q", b"SELECT 1\0"))
                alive.append(c)
            except OSError as e:
                failed += 1
                errors["query: " + str(e)[:100]] = errors.get("query: " + str(e)[:100], 0) + 1
                c.sock.close()
        ok = []
        for c in alive:
            try:
                c.inbuf, c.state = b"", "login"
                while c.state != "ready":
                    data = c.sock.recv(65536)
                    if not data:
                        raise RuntimeError("connection closed during the query")
                    c.feed(data)
                ok.append(c)
            except (OSError, RuntimeError) as e:
                failed += 1
                errors["query: " + str(e)[:100]] = errors.get("query: " + str(e)[:100], 0) + 1
                c.sock.close()
    line = "READY ok=%d failed=%d seconds=%.2f" % (len(ok), failed, time.monotonic() - started)
    print(line, flush=True)
    for err, n in sorted(errors.items(), key=lambda kv: -kv[1])[:5]:
        print("  %d x %s" % (n, err), file=sys.stderr, flush=True)
    if args.ready_file:
        with open(args.ready_file + ".tmp", "w") as f:
            f.write(line + "\n")
        os.replace(args.ready_file + ".tmp", args.ready_file)
    deadline = time.monotonic() + args.hold
    while not stop and time.monotonic() < deadline:
        time.sleep(0.2)
    for c in ok:
        try:
            c.sock.send(msg(b"X", b""))
        except OSError:
            pass
        c.sock.close()


if __name__ == "__main__":
    main()
