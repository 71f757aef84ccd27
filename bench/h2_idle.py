#!/usr/bin/env python3
"""Memory per idle HTTP/2 (h2c) connection: opens N connections to a running veer (the
preface and an empty SETTINGS each, then nothing) and prints veer's RSS growth per
connection, as issue 14 asks.

    python3 bench/h2_idle.py PID PORT [N]      # PID: veer's process, PORT: its plaintext listener

Loopback only; the connections close when it exits. A benchmark, never a test.
"""
import socket
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    pid, port = int(sys.argv[1]), int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    base = rss_kib(pid)
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(PREFACE)
        socks.append(s)
    time.sleep(1.0)  # veer answers each with its SETTINGS; then they idle
    for s in socks:
        s.setblocking(False)
        try:
            s.recv(65536)
        except OSError:
            pass
    time.sleep(0.5)
    after = rss_kib(pid)
    print(f"{n} idle h2c connections: RSS {base} -> {after} KiB, {(after - base) * 1024 / n:.0f} bytes each")


if __name__ == "__main__":
    main()
