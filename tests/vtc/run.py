#!/usr/bin/env python3
"""Runs the VTest (.vtc) HTTP/1 conformance files of tests/vtc against a veer binary.

Usage:
  python3 tests/vtc/run.py --veer build/veer [--varnishtest /usr/bin/varnishtest]
                           [--keep] [--verbose] FILE.vtc [FILE.vtc ...]

Exits 0 only if every file passed. Prints one line per file (PASS/FAIL, name, seconds);
a failure adds varnishtest's output and veer's stderr, indented (--verbose: every file,
with varnishtest -v; --keep: leave each file's temporary directory).

For each file: free loopback ports are picked, a config is written into a temporary
directory, veer is started with `veer --config veer.toml` and waited for until its
listener accepts, then

  varnishtest -t 30 -D veer_addr=... -D veer_port=... ... FILE.vtc

runs (without -q: varnishtest's default mode prints a failing test's whole log, which
this prints; -q would cut it down to "TEST ... FAILED"), and veer is stopped (SIGTERM,
SIGKILL after 5 s; a kill is noted, not judged). A run that lost a port to a
parallel test ("Address already in use" in veer's or varnishtest's output) is run again
on other ports, at most twice. Every wait has a deadline.

Macros given to varnishtest (-D), the same in every file:
  veer_addr    127.0.0.1
  veer_port    veer's listener port          client c1 -connect ${veer_addr}:${veer_port}
  veer_sock    127.0.0.1:<veer_port>
  s1_listen    127.0.0.1:<s1_port>, the endpoint of [pools.blue]
                                              server s1 -listen ${s1_listen} { ... } -start
  s2_listen    127.0.0.1:<s2_port>, the endpoint of [pools.green] (no traffic with the
               base config's canary_weight = 0; a file may start a server on it)
  s1_port, s2_port, admin_port   the bare ports
  dead_port    a loopback port that is bound but never listens: a connect to it is
               refused, and no parallel test can take it while the file runs

The config: the base below, plus the lines of the .vtc file that start with
"#veer-toml " (the rest of each such line is TOML; ${NAME} in it is replaced by the
macro values above, e.g. `#veer-toml endpoints = ["127.0.0.1:${s1_port}", "127.0.0.1:${dead_port}"]`).
A table the extra lines declare ([retry], [limits], [pools.blue], ...) replaces the base's
table of that name, if it has one; so a file that declares [health] must say
`enabled = false` again if it wants no active checks.

Base config (TMP is the per-file temporary directory):
  [listener]    address = "127.0.0.1:<veer_port>", threads = 1
  [admin]       socket = "TMP/veer.sock", http = "127.0.0.1:<admin_port>"
  [pools.blue]  endpoints = ["127.0.0.1:<s1_port>"]
  [pools.green] endpoints = ["127.0.0.1:<s2_port>"]
  [split]       stable = "blue", canary_weight = 0
  [health]      enabled = false   (the vtc servers see only the test's requests)
  [state]       path = "TMP/state.json"

Standard library only (it runs under whatever python3 is first on PATH).
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from loopback import Failure, free_ports, lost_a_port, port_open, wait_until  # noqa: E402

VTC_TIMEOUT_S = 30          # varnishtest -t: one file's whole run
VTC_HARD_LIMIT_S = 45       # the varnishtest process is killed after this
VEER_START_S = 10           # veer's listener must accept within this
VEER_STOP_S = 5             # SIGTERM, then SIGKILL after this
RETRIES_ON_LOST_PORT = 2

TOML_PREFIX = "#veer-toml "
TABLE_RE = re.compile(r"^\s*\[\s*([A-Za-z0-9_.\-]+)\s*\]\s*(#.*)?$")


def base_tables(tmp, ports):
    """The base config as an ordered list of (table name, body lines)."""
    return [
        ("listener", [f'address = "127.0.0.1:{ports["veer_port"]}"', "threads = 1"]),
        ("admin", [f'socket = "{tmp}/veer.sock"', f'http = "127.0.0.1:{ports["admin_port"]}"']),
        ("pools.blue", [f'endpoints = ["127.0.0.1:{ports["s1_port"]}"]']),
        ("pools.green", [f'endpoints = ["127.0.0.1:{ports["s2_port"]}"]']),
        ("split", ['stable = "blue"', "canary_weight = 0"]),
        ("health", ["enabled = false"]),
        ("state", [f'path = "{tmp}/state.json"']),
    ]


def extra_toml(vtc_path):
    with open(vtc_path, encoding="utf-8") as f:
        return [line.rstrip("\n")[len(TOML_PREFIX):] for line in f if line.startswith(TOML_PREFIX)]


def substitute(text, macros):
    def one(m):
        name = m.group(1).strip()
        if name not in macros:
            raise Failure(f"unknown macro ${{{name}}} in a #veer-toml line")
        return macros[name]
    return re.sub(r"\$\{([^}]+)\}", one, text)


def write_config(path, tmp, ports, macros, extra):
    extra = [substitute(line, macros) for line in extra]
    declared = {m.group(1) for m in (TABLE_RE.match(line) for line in extra) if m}
    out = []
    for name, body in base_tables(tmp, ports):
        if name in declared:
            continue
        out.append(f"[{name}]")
        out.extend(body)
        out.append("")
    out.extend(extra)
    out.append("")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))
    return "\n".join(out)


def stop(proc):
    """SIGTERM, then SIGKILL after VEER_STOP_S; whether SIGKILL was needed."""
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=VEER_STOP_S)
        return False
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=VEER_STOP_S)
        return True


def indent(text, prefix="    | "):
    return "\n".join(prefix + line for line in text.rstrip("\n").splitlines())


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def run_once(args, vtc):
    """One run: (status, detail) with status "pass", "fail" or "lost_port"."""
    tmp = tempfile.mkdtemp(prefix="veer-vtc-")
    dead = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    veer = None
    try:
        # Bound and never listening: a connect to it is refused for as long as this
        # process holds it, and nobody else can bind it meanwhile.
        dead.bind(("127.0.0.1", 0))
        veer_port, admin_port, s1_port, s2_port = free_ports(4)
        ports = {"veer_port": veer_port, "admin_port": admin_port, "s1_port": s1_port,
                 "s2_port": s2_port, "dead_port": dead.getsockname()[1]}
        macros = {k: str(v) for k, v in ports.items()}
        macros.update({
            "veer_addr": "127.0.0.1",
            "veer_sock": f"127.0.0.1:{veer_port}",
            "s1_listen": f"127.0.0.1:{s1_port}",
            "s2_listen": f"127.0.0.1:{s2_port}",
        })
        config = os.path.join(tmp, "veer.toml")
        config_text = write_config(config, tmp, ports, macros, extra_toml(vtc))
        veer_log = os.path.join(tmp, "veer.log")
        with open(veer_log, "wb") as log_f:
            veer = subprocess.Popen([args.veer, "--config", config], stdin=subprocess.DEVNULL,
                                    stdout=log_f, stderr=subprocess.STDOUT, cwd=tmp)

        def veer_output():
            return read_text(veer_log)

        try:
            wait_until("veer's listener", lambda: port_open(veer_port), VEER_START_S, procs=[("veer", veer)])
        except Failure as e:
            stop(veer)
            if lost_a_port([veer_log]):
                return "lost_port", ""
            return "fail", f"{e}\n  config:\n{indent(config_text)}\n  veer:\n{indent(veer_output())}"

        cmd = [args.varnishtest, "-t", str(VTC_TIMEOUT_S)] + (["-v"] if args.verbose else [])
        for name in sorted(macros):
            cmd += ["-D", f"{name}={macros[name]}"]
        cmd.append(os.path.abspath(vtc))
        try:
            vt = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, timeout=VTC_HARD_LIMIT_S, cwd=tmp)
            vt_out, vt_rc = vt.stdout.decode("utf-8", "replace"), vt.returncode
        except subprocess.TimeoutExpired as e:
            vt_out = (e.stdout or b"").decode("utf-8", "replace")
            vt_out += f"\n(varnishtest killed after {VTC_HARD_LIMIT_S}s)"
            vt_rc = -1
        veer_alive = veer.poll() is None
        if stop(veer):
            # Not judged (the test's verdict is varnishtest's), but worth seeing: with every
            # client gone, a drain should not take that long.
            print(f"     note: {os.path.basename(vtc)}: veer had not exited {VEER_STOP_S}s after SIGTERM"
                  " (killed)", flush=True)
        if vt_rc == 0 and veer_alive:
            return "pass", (f"  varnishtest:\n{indent(vt_out)}\n  veer:\n{indent(veer_output())}"
                            if args.verbose else "")
        if lost_a_port([veer_log], vt_out):
            return "lost_port", ""
        why = f"varnishtest exited with {vt_rc}" if vt_rc != 0 else \
              f"veer exited with {veer.returncode} during the test"
        return "fail", (f"{why}\n  varnishtest:\n{indent(vt_out)}\n  config:\n{indent(config_text)}"
                        f"\n  veer:\n{indent(veer_output())}")
    finally:
        if veer is not None:
            stop(veer)
        dead.close()
        if args.keep:
            print(f"    kept {tmp}", flush=True)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def run_file(args, vtc):
    for attempt in range(RETRIES_ON_LOST_PORT + 1):
        status, detail = run_once(args, vtc)
        if status != "lost_port":
            return status == "pass", detail
        print(f"     {os.path.basename(vtc)}: lost a port to a parallel test, again on other ports"
              f" ({attempt + 1}/{RETRIES_ON_LOST_PORT})", flush=True)
    return False, f"lost a port {RETRIES_ON_LOST_PORT + 1} times"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--veer", required=True, help="the veer binary")
    ap.add_argument("--varnishtest", default=shutil.which("varnishtest") or "/usr/bin/varnishtest")
    ap.add_argument("--keep", action="store_true", help="keep each file's temporary directory")
    ap.add_argument("--verbose", action="store_true", help="print every file's logs, passed or not")
    ap.add_argument("files", nargs="+", metavar="FILE.vtc")
    args = ap.parse_args()
    args.veer = os.path.abspath(args.veer)
    for path, what in ((args.veer, "--veer"), (args.varnishtest, "--varnishtest")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            print(f"{what}: {path} is not an executable file", file=sys.stderr)
            return 2
    failed = 0
    for vtc in args.files:
        t0 = time.monotonic()
        try:
            ok, detail = run_file(args, vtc)
        except Failure as e:
            ok, detail = False, str(e)
        dt = time.monotonic() - t0
        print(f"{'PASS' if ok else 'FAIL'} {os.path.basename(vtc)} ({dt:.1f}s)", flush=True)
        if not ok:
            failed += 1
        if detail:
            print(indent(detail, "    "), flush=True)
    print(f"vtc: {len(args.files) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
