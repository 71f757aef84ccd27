#!/usr/bin/env bash
# Checks the shipped configuration files: every TOML config passes `veer --check-config`,
# a broken one fails with file:line:col, the Prometheus alert rules pass
# `promtool check rules`, and the Grafana dashboard is valid JSON whose queries parse.
# Usage: tests/conf/check_conf.sh VEER_BINARY SOURCE_DIR   (registered with CTest)
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 VEER_BINARY SOURCE_DIR" >&2
  exit 2
fi
veer=$1
src=$2
passed=0
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/veer-conf-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1" >&2; if [ -n "${2:-}" ]; then sed 's/^/     /' "$2" >&2; fi; }

# 1. Every shipped config validates.
shopt -s nullglob
configs=("$src/conf/veer.toml" "$src"/conf/examples/*.toml)
shopt -u nullglob
if [ ${#configs[@]} -lt 4 ]; then
  fail "expected conf/veer.toml and the examples (canary, linear, all-at-once), found ${#configs[@]} files"
fi
for f in "${configs[@]}"; do
  if "$veer" --check-config "$f" >"$tmp/out" 2>&1; then
    pass "veer --check-config ${f#"$src"/}"
  else
    fail "veer --check-config ${f#"$src"/}" "$tmp/out"
  fi
done

# 2. A broken config is refused, naming file, line, column and key.
cat >"$tmp/broken.toml" <<'TOML'
[pools.blue]
endpoints = ["127.0.0.1:9001"]
[pools.green]
endpoints = ["127.0.0.1:9101"]
[slo]
max_error_rate = 5
TOML
if "$veer" --check-config "$tmp/broken.toml" >"$tmp/out" 2>&1; then
  fail "veer --check-config accepted a broken config (slo.max_error_rate = 5)" "$tmp/out"
elif grep -q "broken.toml:6:1: slo.max_error_rate: " "$tmp/out"; then
  pass "veer --check-config refuses a broken config with file:line:col"
else
  fail "veer --check-config: no 'broken.toml:6:1: slo.max_error_rate: ...' in its errors" "$tmp/out"
fi

# 3. The alert rules.
rules="$src/conf/prometheus-alerts.yml"
if ! command -v promtool >/dev/null 2>&1; then
  fail "promtool not found (Debian package prometheus; scripts/deps test installs it)"
elif promtool check rules "$rules" >"$tmp/out" 2>&1; then
  pass "promtool check rules conf/prometheus-alerts.yml"
else
  fail "promtool check rules conf/prometheus-alerts.yml" "$tmp/out"
fi

# 4. The dashboard: valid JSON, the expected shape, and every query parses as PromQL
#    (Grafana's variables replaced by plain values, checked as recording rules).
dashboard="$src/conf/grafana-dashboard.json"
if python3 -m json.tool "$dashboard" >/dev/null 2>"$tmp/out"; then
  pass "python3 -m json.tool conf/grafana-dashboard.json"
else
  fail "python3 -m json.tool conf/grafana-dashboard.json" "$tmp/out"
fi
if python3 - "$dashboard" "$tmp/dashboard-rules.yml" >"$tmp/out" 2>&1 <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
problems = []
if not isinstance(d.get("schemaVersion"), int) or d["schemaVersion"] < 36:
    problems.append("schemaVersion missing or below 36")
variables = {v.get("name"): v for v in d.get("templating", {}).get("list", [])}
if variables.get("datasource", {}).get("type") != "datasource" or variables["datasource"].get("query") != "prometheus":
    problems.append("no 'datasource' template variable of type prometheus")
exprs, ids = [], set()
def walk(panels):
    for p in panels:
        if p.get("id") in ids:
            problems.append("duplicate panel id %s" % p.get("id"))
        ids.add(p.get("id"))
        for t in p.get("targets", []):
            exprs.append((p.get("title"), t.get("expr", "")))
        walk(p.get("panels", []))
walk(d.get("panels", []))
for a in d.get("annotations", {}).get("list", []):
    if a.get("expr"):
        exprs.append(("annotation " + a.get("name", ""), a["expr"]))
text = " ".join(e for _, e in exprs)
for metric in ["veer_requests_total", "veer_request_duration_seconds_bucket", "veer_slo_window_error_rate",
               "veer_slo_window_latency_seconds", "veer_canary_weight", "veer_rollout_state",
               "veer_rollbacks_total", "veer_endpoint_healthy", "veer_connections_active",
               "veer_webhook_dropped_total"]:
    if metric not in text:
        problems.append("no panel queries " + metric)
values = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h",
          "$job": ".*", "$instance": ".*", "$pool": ".*"}
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, (title, e) in enumerate(exprs):
        if not e.strip():
            problems.append("panel %r has an empty query" % title)
            continue
        for k, v in values.items():
            e = e.replace(k, v)
        out.write("      - record: dashboard:query_%d\n        expr: %s\n" % (i, json.dumps(e)))
for p in problems:
    print(p)
print("%d queries" % len(exprs))
sys.exit(1 if problems else 0)
PY
then
  pass "conf/grafana-dashboard.json: $(tail -1 "$tmp/out"), datasource variable, every veer metric"
else
  fail "conf/grafana-dashboard.json: shape" "$tmp/out"
fi
if [ -s "$tmp/dashboard-rules.yml" ] && command -v promtool >/dev/null 2>&1; then
  if promtool check rules "$tmp/dashboard-rules.yml" >"$tmp/out" 2>&1; then
    pass "conf/grafana-dashboard.json: every query parses (promtool)"
  else
    fail "conf/grafana-dashboard.json: a query does not parse" "$tmp/out"
  fi
fi

echo "conf: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
