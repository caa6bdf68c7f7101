#!/usr/bin/env bash
# The offline quickstart: start the sandbox, apply the stack (upload and deploy the tiny text model,
# templates, pipeline, index, ingest the sample images, smoke tests), run one text and one image
# search, and print what exists and what passed. Needs only the installed `provision` (make setup).
# With --serve (or SERVE=1; `make quickstart SERVE=1`) it then serves the search page on what it
# built, at http://127.0.0.1:${PORT:-8080}/, until Ctrl-C.
set -euo pipefail
serve="${SERVE:-}"
[[ "${1:-}" == "--serve" ]] && serve=1
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
python=${PYTHON:-python}
provision=${PROVISION:-provision}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

workdir="$(mktemp -d)"
started_sandbox=
if [[ -n "${ES_URL:-}" ]]; then
    step "using the cluster at ${ES_URL}"
else
    port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    export ES_URL="http://127.0.0.1:${port}"
    step "starting the sandbox on ${ES_URL} (log: ${workdir}/sandbox.log)"
    "$provision" sandbox --port "$port" --deployment-delay 1 >"${workdir}/sandbox.log" 2>&1 &
    sandbox_pid=$!
    started_sandbox=1
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

app_port="${PORT:-8080}"
if [[ -n "$serve" ]]; then
    step "provision serve stack.yaml --port ${app_port}: open http://127.0.0.1:${app_port}/ (Ctrl-C stops it)"
    "$provision" serve stack.yaml --port "$app_port"
elif [[ -n "$started_sandbox" ]]; then
    step "the search page"
    echo "The sandbox stops with this script. To search what it built in your browser, run"
    echo "    make quickstart SERVE=1        (or examples/quickstart/run.sh --serve)"
    echo "which builds the same stack and serves it at http://127.0.0.1:${app_port}/ until Ctrl-C."
else
    step "the search page"
    echo "What was built stays on the cluster at \$ES_URL. With the same ES_URL (and credentials), run"
    echo "    provision serve examples/quickstart/stack.yaml"
    echo "and open http://127.0.0.1:8080/"
fi
