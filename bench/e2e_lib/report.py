#!/usr/bin/env python3
"""Turns the raw outputs of bench/e2e into one markdown table (and notes under it).

    report.py DIR     reads DIR/runs.tsv, DIR/perf.tsv, DIR/callgrind.tsv and DIR/mem.tsv
                      (bench/e2e writes them)
"""
import os, re, statistics, sys

D = sys.argv[1]
PROXIES = ["nginx", "haproxy", "veer"]
TARGETS = ["direct"] + PROXIES
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}
TICK_US = 1e6 / os.sysconf("SC_CLK_TCK")


def rows(name):
    path = os.path.join(D, name)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def parse_wrk(path):
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\b", text, re.M)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = {"non-2xx": int(non2xx.group(1)) if non2xx else 0}
    for kind, n in zip(("connect", "read", "write", "timeout"), sock.groups() if sock else ()):
        errors[kind] = int(n)
    if not rps or not p99:
        errors["no result"] = 1
    return (float(rps.group(1)) if rps else 0.0,
            float(p99.group(1)) * UNITS[p99.group(2)] if p99 else float("nan"), errors,
            int(total.group(1)) if total else 0)


def cpu_per_request(before, after, requests):
    """(user, system) CPU µs per request of the serving process, from /proc ticks."""
    if not requests or not before or not after:
        return (float("nan"), float("nan"))
    b, a = [list(map(int, x.split())) for x in (before, after)]
    return tuple((a[i] - b[i]) * TICK_US / requests for i in (0, 1))


def label(body):
    m = re.fullmatch(r"/bytes/(\d+)", body)
    return f"{int(m.group(1)) / 1024:g} KiB" if m else "tiny"


def fmt(x, digits=0):
    return "n/a" if x is None or x != x else f"{x:,.{digits}f}"


# --- throughput and latency, from wrk -----------------------------------------------
runs = {}                                     # (conc, body) -> target -> rep -> (rps, p99, errors, cpu)
for rep, conc, body, target, path, *ticks in rows("runs.tsv"):
    rps, p99, errors, total = parse_wrk(path)
    cpu = cpu_per_request(*ticks, total) if len(ticks) == 2 and target != "direct" else (float("nan"),) * 2
    runs.setdefault((int(conc), body), {}).setdefault(target, {})[rep] = (rps, p99, errors, cpu)

notes, table = [], []
for (conc, body), by_target in sorted(runs.items()):
    med = {t: (statistics.median(r[0] for r in by_target[t].values()),
               statistics.median(r[1] for r in by_target[t].values()))
           for t in TARGETS if t in by_target}
    for t in TARGETS:
        if t not in by_target:
            continue
        reps = by_target[t]
        rps = [r[0] for r in reps.values()]
        errors = {}
        for r in reps.values():
            for kind, n in r[2].items():
                errors[kind] = errors.get(kind, 0) + n
        bad = ", ".join(f"{k} {n}" for k, n in errors.items() if n)
        if bad:
            notes.append(f"{t} at {conc} connections, GET {body}: {bad} (wrk, all repetitions)")
        vs_best = ""
        if t == "veer":
            ratios = [reps[rep][0] / max(by_target["nginx"][rep][0], by_target["haproxy"][rep][0])
                      for rep in reps if max(by_target["nginx"][rep][0], by_target["haproxy"][rep][0]) > 0]
            if ratios:
                vs_best = f"{statistics.median(ratios):.2f}"
                if len(ratios) > 1:
                    vs_best += f" ({min(ratios):.2f}–{max(ratios):.2f})"
        direct_rps, direct_p99 = med.get("direct", (0, float("nan")))
        table.append([str(conc), label(body), t, fmt(med[t][0]), f"{fmt(min(rps))}–{fmt(max(rps))}",
                      f"{med[t][0] / direct_rps:.2f}" if direct_rps else "n/a", vs_best,
                      fmt(med[t][1], 2), "" if t == "direct" else fmt(med[t][1] - direct_p99, 2),
                      f"**{bad}**" if bad else "0"] +
                     [fmt(statistics.median(r[3][i] for r in reps.values()), 1) if t != "direct" else "" for i in (0, 1)] +
                     [""] * 6)

# --- per proxy: instructions per request (perf + h2load), memory with idle connections --
perf = {}
for target, csv, h2out in rows("perf.tsv"):
    done = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", open(h2out).read())
    counts = {}
    for line in open(csv):
        f = line.split(",")
        if len(f) > 2 and f[2].startswith("instructions") and f[0].replace(".", "").isdigit():
            counts[f[2].split(":")[-1]] = float(f[0])
    n = int(done.group(1)) if done else 0
    if not n:
        notes.append(f"{target}: h2load reported no successful request (see {h2out})")
    perf[target] = [fmt(counts[k] / n) if n and k in counts else "n/a" for k in ("u", "k")]
for target, small_n, small, large_n, large in rows("callgrind.tsv"):
    small_n, small, large_n, large = map(int, (small_n, small, large_n, large))
    if not small or not large:
        notes.append(f"{target}: callgrind gave no instruction count (see callgrind-{target}-*.out)")
    perf[target] = [fmt((large - small) / (large_n - small_n)) + " (callgrind)" if small and large else "n/a", "n/a"]

mem, IDLE = {}, "per proxy"
for target, before, during, wanted, answered, green in rows("mem.tsv"):
    before, during, wanted, answered, green = map(int, (before, during, wanted, answered, green))
    IDLE = f"{wanted:,} idle"
    if answered < wanted:
        notes.append(f"{target}: only {answered} of {wanted} idle connections were opened and answered")
    mem[target] = [fmt(before / 1024, 1), fmt(during / 1024, 1),
                   fmt((during - before) / answered, 2) if answered else "n/a",
                   fmt(100 * green / answered, 1) if answered else "n/a"]

for t in PROXIES:
    if t in perf or t in mem:
        table.append([IDLE, "GET /", t] + [""] * 9 + perf.get(t, ["n/a"] * 2) + mem.get(t, ["n/a"] * 4))

# --- per proxy: where the CPU goes (perf record -e cpu-clock during wrk -c50) ---------
SYSCALLS = {"send": ("__sys_sendto", "__sys_sendmsg", "do_writev"),
            "recv": ("__sys_recvfrom", "__sys_recvmsg", "do_readv", "ksys_read"),
            "epoll_wait": ("do_epoll_wait",)}
profiles = []
for target, dso_path, sym_path in rows("profile.tsv"):
    dso = {}
    for line in open(dso_path):
        m = re.match(r"\s+([\d.]+)%\s+(\S+)", line)
        if m:
            dso[m.group(2)] = dso.get(m.group(2), 0.0) + float(m.group(1))
    syms = {}
    for line in open(sym_path):
        m = re.match(r"\s+([\d.]+)%\s+[\d.]+%\s+\[k\]\s+(\S+)", line)
        if m:
            syms.setdefault(m.group(2), float(m.group(1)))
    kernel = dso.get("[kernel.kallsyms]", 0.0)
    own = dso.get(target, 0.0)  # the executable's own name
    libs = sum(v for k, v in dso.items() if k.startswith("lib") or k == "[vdso]")
    calls = {name: sum(syms.get(f, 0.0) for f in fs) for name, fs in SYSCALLS.items()}
    profiles.append([target, fmt(kernel, 1)] + [fmt(calls[n], 1) for n in SYSCALLS] +
                    [fmt(own, 1), fmt(libs, 1)])

header = ["conc", "body", "target", "req/s (median)", "min–max", "× direct",
          "veer ÷ best(nginx, HAProxy)", "p99 ms (median)", "+p99 ms vs direct", "errors",
          "CPU µs/req user", "CPU µs/req sys", "instr/req user", "instr/req kernel", "RSS MiB before", "RSS MiB with idle conns",
          "KiB/conn", "green %"]
print("| " + " | ".join(header) + " |")
print("|" + "|".join("---" if i < 3 else "---:" for i in range(len(header))) + "|")
for r in table:
    print("| " + " | ".join(r) + " |")
if profiles:
    print("\nWhere each proxy's CPU time goes (% of its samples, `perf record -e cpu-clock -g` "
          "during `wrk -t1 -c50` GET /; send/recv/epoll_wait include the kernel work they do, "
          "such as delivering a loopback segment to the receiving socket):\n")
    print("| proxy | kernel | send | recv | epoll_wait | its own code | libraries (libc, vdso, ...) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in profiles:
        print("| " + " | ".join(r) + " |")
if notes:
    print("\n**Flags:**\n")
    for n in notes:
        print(f"- {n}")
