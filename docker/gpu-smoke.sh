#!/usr/bin/env bash
# Smoke test of the compose stack on a GPU host, after `docker compose up -d`:
#
#   bash docker/gpu-smoke.sh
#
# Inside the running gad container (no tools needed on the host besides docker compose):
#   1. waits for /readyz to answer 200 (model loaded, Redis reachable)
#   2. GET /v1/models: the head must run on CUDAExecutionProvider first, not the CPU fallback
#   3. renders a clip (`gad data render`) and streams it with `gad stream --quiet`
#   4. prints frames, labels, drops, errors and the round-trip / server latency p50 p95 p99
# Exits non-zero on the first failure. Settings, from the environment:
#   COMPOSE              the compose command (default: docker compose -f docker/compose.yaml;
#                        e.g. "docker compose -f docker/compose.yaml -f docker/compose.cpu.yaml")
#   GAD_SERVICE          the service to test (gad)
#   EXPECT_PROVIDER      CUDAExecutionProvider (CPUExecutionProvider for the CPU stack)
#   GAD_SMOKE_SECONDS    clip length in seconds (30)
#   GAD_SMOKE_REALTIME   1: send frames at video time, like a camera (default); 0: as fast
#                        as the server answers (a throughput test)
#   GAD_SMOKE_WAIT_S     how long to wait for /readyz (120)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
read -r -a compose <<<"${COMPOSE:-docker compose -f $here/compose.yaml}"
service=${GAD_SERVICE:-gad}
settings=(
  -e "EXPECT_PROVIDER=${EXPECT_PROVIDER:-CUDAExecutionProvider}"
  -e "GAD_SMOKE_SECONDS=${GAD_SMOKE_SECONDS:-30}"
  -e "GAD_SMOKE_REALTIME=${GAD_SMOKE_REALTIME:-1}"
  -e "GAD_SMOKE_WAIT_S=${GAD_SMOKE_WAIT_S:-120}"
)

if ! "${compose[@]}" exec -T "$service" true; then
  echo "FAIL the '$service' service is not running: docker compose up -d first" >&2
  exit 1
fi
if "${compose[@]}" exec -T "$service" sh -c 'command -v nvidia-smi >/dev/null'; then
  "${compose[@]}" exec -T "$service" nvidia-smi -L | sed 's/^/gpu  /'
fi

# The checks run in the service's own Python: the API key and port come from its settings.
"${compose[@]}" exec -T "${settings[@]}" "$service" python - <<'PY'
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from service.settings import Settings


def fail(message: str) -> None:
    print(f"FAIL {message}", file=sys.stderr)
    sys.exit(1)


settings = Settings()
base = f"http://127.0.0.1:{settings.port}"
key = settings.api_keys[0].get_secret_value() if settings.api_keys else None
headers = {"Authorization": f"Bearer {key}"} if key else {}


def get(path: str) -> dict:
    request = urllib.request.Request(base + path, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


deadline = time.monotonic() + float(os.environ["GAD_SMOKE_WAIT_S"])
while True:
    try:
        ready = get("/readyz")
        break
    except urllib.error.HTTPError as exc:
        last = f"HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}"
    except OSError as exc:
        last = str(exc)
    if time.monotonic() > deadline:
        fail(f"/readyz did not answer 200 in {os.environ['GAD_SMOKE_WAIT_S']} s: {last}")
    time.sleep(2)
print(f"ok   /readyz: model {ready['model']}, cache {ready['cache']}")

model = get("/v1/models")["models"][0]
providers = model["providers"]
expected = os.environ["EXPECT_PROVIDER"]
if not providers or providers[0] != expected:
    fail(
        f"the head runs on {providers}, expected {expected} first: see the service log "
        "(`docker compose logs gad`) for the provider that failed to load"
    )
print(f"ok   /v1/models: {model['name']}/{model['version']} on {', '.join(providers)}")

seconds = os.environ["GAD_SMOKE_SECONDS"]
realtime = os.environ["GAD_SMOKE_REALTIME"] == "1"
with tempfile.TemporaryDirectory(prefix="gad-smoke-") as folder:
    subprocess.run(
        ["gad", "data", "render", "--out", folder, "--videos", "1", "--seconds", seconds,
         "--no-progress"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    video = next(Path(folder, "videos").glob("*.mp4"))
    command = ["gad", "stream", "--quiet", "--video", str(video),
               "--url", f"ws://127.0.0.1:{settings.port}/v1/streams/smoke-{int(time.time())}"]
    if realtime:
        command.append("--realtime")
    run = subprocess.run(
        command, env=os.environ | ({"GAD_TOKEN": key} if key else {}),
        capture_output=True, text=True,
    )
try:
    summary = json.loads(run.stdout)
except json.JSONDecodeError:
    fail(f"gad stream exited {run.returncode}:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
mode = "paced at video time" if realtime else "as fast as answered"
print(
    f"ok   streamed a {seconds} s clip ({mode}): {summary['sent']} frames sent, "
    f"{summary['labels']} labels ({summary['carried']} carried over), "
    f"{summary['dropped']} dropped, {summary['errors']} errors"
)
print(f"{'latency ms':<12}{'p50':>9}{'p95':>9}{'p99':>9}")
for name in ("round_trip_ms", "server_ms"):
    row = summary.get(name) or {}
    cells = "".join(
        f"{row[q]:>9.2f}" if row.get(q) is not None else f"{'-':>9}" for q in ("50", "95", "99")
    )
    print(f"{name.removesuffix('_ms').replace('_', ' '):<12}{cells}")
if run.returncode != 0 or summary["errors"] or not summary["labels"]:
    fail(f"gad stream exited {run.returncode} with {summary['errors']} errors:\n{run.stderr[-2000:]}")
PY
echo "ok   smoke test passed"
