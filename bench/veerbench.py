"""Small helpers the bench/*.py scripts share: free ports, waiting for a listener, the
admin socket, and starting veer-upstream + veer on loopback."""
import json
import os
import socket
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} not listening after {seconds} s")


def admin(sock, line):
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(sock)
        s.sendall(line.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


class Setup:
    """blue and green veer-upstreams and a veer in front of them, in a temp dir.

    `extra` is TOML appended to the config (tables not otherwise written)."""

    def __init__(self, build=BUILD, threads=1, weight=0, extra="", admin_http=False):
        self.build = build
        self.dir = tempfile.mkdtemp(prefix="veer-bench-")
        self.bp, self.gp, self.vp = free_port(), free_port(), free_port()
        self.hp = free_port() if admin_http else None
        self.sock = os.path.join(self.dir, "a.sock")
        self.config = os.path.join(self.dir, "veer.toml")
        self.procs = {}
        for name, port in (("blue", self.bp), ("green", self.gp)):
            self.procs[name] = subprocess.Popen([f"{build}/veer-upstream", "--name", name, "--port", str(port)],
                                                stderr=subprocess.DEVNULL)
            wait_port(port)
        http = f'"127.0.0.1:{self.hp}"' if self.hp else '""'
        self.base = (f'[listener]\naddress = "127.0.0.1:{self.vp}"\nthreads = {threads}\n'
                     f'[admin]\nsocket = "{self.sock}"\nhttp = {http}\n'
                     f'[pools.blue]\nendpoints = ["127.0.0.1:{self.bp}"]\n'
                     f'[pools.green]\nendpoints = ["127.0.0.1:{self.gp}"]\n'
                     f'[split]\ncanary_weight = {weight}\n[state]\npath = "{self.dir}/state.json"\n' + extra)
        self.write_config(self.base)
        self.procs["veer"] = subprocess.Popen([f"{build}/veer", "--config", self.config],
                                              stderr=open(os.path.join(self.dir, "veer.log"), "wb"))
        wait_port(self.vp)

    def write_config(self, text):
        with open(self.config, "w") as f:
            f.write(text)

    def admin(self, line):
        return admin(self.sock, line)

    def close(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(10)
