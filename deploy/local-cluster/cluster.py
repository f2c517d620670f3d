#!/usr/bin/env python3
"""The client side of deploy/local-cluster/run.sh: readiness waits, the
checks (chat across hosts, kvstore from every host, real client addresses)
and the load that runs during the rolling update. Run inside the client
namespace; addresses are the cluster's (198.18.0.0/15, RFC 2544)."""

import json
import socket
import sys
import threading
import time
import urllib.request

LB = "198.18.0.1"


def wait_ready(url, seconds=30):
    """Waits until GET url answers 200."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=1).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"not ready within {seconds} s: {url}")


def connect(port, source=None, timeout=5):
    sock = socket.create_connection((LB, port), timeout=timeout,
                                    source_address=(source, 0) if source else None)
    sock.settimeout(timeout)
    return sock


def read_line(sock):
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace")


def check_whoami():
    """The handler sees each client's own address, through HAProxy."""
    seen = []
    for source in ["198.18.0.101", "198.18.0.102", "198.18.0.103"]:
        sock = connect(7100, source)
        line = read_line(sock)
        sock.close()
        if f"peer={source}:" not in line:
            sys.exit(f"whoami from {source} saw: {line!r}")
        seen.append(line.strip())
    return seen


def check_chat():
    """Three members, one per host (HAProxy round-robin): each one's line
    reaches the two others."""
    members = [connect(7000, timeout=10) for _ in range(3)]
    for i, sock in enumerate(members):
        sock.sendall(f"/nick member{i}\n".encode())
    time.sleep(1.0)
    for sock in members:
        sock.settimeout(0.2)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        sock.settimeout(10)
    for i, sock in enumerate(members):
        sock.sendall(f"hello from member{i}\n".encode())
    missing = []
    for i, sock in enumerate(members):
        text = ""
        deadline = time.time() + 10
        want = [f"hello from member{j}" for j in range(3) if j != i]
        while not all(w in text for w in want) and time.time() < deadline:
            try:
                chunk = sock.recv(65536)
            except OSError:
                continue
            if not chunk:
                break
            text += chunk.decode(errors="replace")
        missing += [f"member{i} missed {w!r}" for w in want if w not in text]
    for sock in members:
        sock.close()
    if missing:
        sys.exit("chat: " + "; ".join(missing))
    return "3 members on 3 hosts each got the 2 others' lines"


def resp(port, *args):
    sock = connect(port)
    command = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    sock.sendall(command.encode())
    reply = sock.recv(4096).decode()
    sock.close()
    return reply


def check_kv():
    """A SET through one host, the same GET answer from each of three."""
    resp(6379, "SET", "cluster:greeting", "same everywhere")
    answers = {resp(6379, "GET", "cluster:greeting") for _ in range(3)}
    if answers != {"$15\r\nsame everywhere\r\n"}:
        sys.exit(f"kvstore answers differ: {answers!r}")
    resp(6379, "INCRBY", "cluster:count", "0")
    counts = [resp(6379, "INCR", "cluster:count") for _ in range(6)]
    return f"GET gave one answer on 3 hosts; 6 INCRs through 3 hosts gave {[c.strip() for c in counts]}"


def load(seconds, threads, result_file):
    """Echo clients through HAProxy for `seconds`: each connection sends
    three lines 100 ms apart (so some are always in flight) and checks the
    echo. Writes the counts as JSON."""
    counts = {"connections": 0, "failed": 0, "errors": []}
    lock = threading.Lock()
    stop = time.time() + seconds

    def client(n):
        i = 0
        while time.time() < stop:
            i += 1
            ok = True
            try:
                sock = connect(7200, timeout=10)
                for k in range(3):
                    line = f"client {n} connection {i} line {k}\n"
                    sock.sendall(line.encode())
                    if read_line(sock) != line:
                        ok = False
                        break
                    time.sleep(0.1)
                sock.close()
            except OSError as err:
                ok = False
                with lock:
                    if len(counts["errors"]) < 5:
                        counts["errors"].append(str(err))
            with lock:
                counts["connections"] += 1
                counts["failed"] += 0 if ok else 1

    workers = [threading.Thread(target=client, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    with open(result_file, "w") as out:
        json.dump(counts, out)


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "wait-ready":
        wait_ready(sys.argv[2])
    elif what == "whoami":
        print("\n".join(check_whoami()))
    elif what == "chat":
        print(check_chat())
    elif what == "kv":
        print(check_kv())
    elif what == "load":
        load(float(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit(f"unknown: {what}")
