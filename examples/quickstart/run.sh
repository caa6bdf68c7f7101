#!/usr/bin/env bash
# The offline quickstart: start the sandbox, apply the stack (upload and deploy the tiny text model,
# templates, pipeline, index, ingest the sample images, smoke tests), run one text and one image
# search, and print what exists and what passed. Needs only the installed `provision` (make setup).
set -euo pipefail
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python=${PYTHON:-python}
provision=${PROVISION:-provision}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

workdir="$(mktemp -d)"
if [[ -n "${ES_URL:-}" ]]; then
    step "using the cluster at ${ES_URL}"
else
    port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    export ES_URL="http://127.0.0.1:${port}"
    step "starting the sandbox on ${ES_URL} (log: ${workdir}/sandbox.log)"
    "$provision" sandbox --port "$port" --deployment-delay 1 >"${workdir}/sandbox.log" 2>&1 &
    sandbox_pid=$!
    trap 'kill "$sandbox_pid" 2>/dev/null || true; wait "$sandbox_pid" 2>/dev/null || true' EXIT
    "$python" - "$ES_URL" <<'PY'
import sys, time, urllib.request
for _ in range(200):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1)
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit("the sandbox did not start; see its log")
PY
fi

step "provision validate stack.yaml"
"$provision" validate stack.yaml

step "provision apply stack.yaml --auto-approve"
"$provision" apply stack.yaml --auto-approve

step 'provision search stack.yaml --text "a red circle"'
"$provision" search stack.yaml --text "a red circle" --k 3

step "provision search stack.yaml --image queries/red-circle.jpg"
"$provision" search stack.yaml --image queries/red-circle.jpg --k 3

step "summary"
"$provision" status stack.yaml --output json >"${workdir}/status.json"
"$provision" verify stack.yaml --output json >"${workdir}/verify.json"
"$python" - "${workdir}/status.json" "${workdir}/verify.json" <<'PY'
import json, sys
status = json.load(open(sys.argv[1]))
verify = json.load(open(sys.argv[2]))
print(f"stack '{status['stack']}' on {status['cluster']}: {'converged' if status['converged'] else 'NOT converged'}")
for res in status["resources"]:
    extra = ", ".join(f"{k} {v}" for k, v in res["details"].items())
    state = "in sync" if res["present"] and res["managed"] and not res["drifted"] else "NOT in sync"
    print(f"  {res['kind']:<19} {res['name']:<34} {state}{'  (' + extra + ')' if extra else ''}")
print(f"smoke tests: {verify['passed']} passed, {verify['failed']} failed")
for res in verify["results"]:
    print(f"  {'PASS' if res['passed'] else 'FAIL'} {res['name']:<18} {res['query']!r}")
sys.exit(0 if status["converged"] and verify["ok"] else 1)
PY
