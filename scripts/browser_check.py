"""Drive the live demo page (`GET /`) in a real headless Chromium: not part of the test suite.

    GAD_CACHE_DIR=$PWD/.cache/gad .venv/bin/python scripts/browser_check.py [--video FILE]
        [--chromium PATH] [--screenshot docs/img/demo-page.png] [--seconds 10]

Starts `gad serve` on the render demo model (`gad demo build --kind render`: the page check
plays one of its rendered test videos) on a free port with an API key (the page is refused
without it, then given it), opens the page in the system Chromium (`apt-get install
chromium`) over the DevTools protocol (plain `websockets`, no Playwright), plays a rendered
demo video through the page's file input and checks that labels arrive with no errors; then
Classify a clip on the same file, Reconnect (the server resumes the window), Stop (the server
ends the stream) and the camera on Chromium's fake device. Saves a screenshot. Exit status 0
when every check passed.

    .venv/bin/python scripts/browser_check.py --camera CLIP [--model PACKAGE]
        [--screenshot docs/img/demo-camera-pose.png] [--seconds 20]

--camera: a fake webcam fed from a real clip. The clip becomes a .y4m file (YUV4MPEG2,
written here with numpy) that Chromium plays as its camera
(--use-file-for-fake-video-capture, looped); the page's "Use camera" streams it to the pose
demo model (`gad demo build`, the one `gad serve` serves; built if missing) or --model, and
the check is that labels arrive for the camera with no errors. Prints the labels seen.

The demo videos are MPEG-4 Part 2, which browsers do not decode: the script transcodes the
clip to WebM (VP8) with OpenCV first, as a user would have to.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import websockets

from bench.launch import served, stop

ROOT = Path(__file__).resolve().parent.parent
API_KEY = "demo-key"  # the server runs with auth on: the page passes it as a subprotocol
SERVE_ENV = {"GAD_THREADS": "1", "GAD_PROVIDERS": "cpu", "GAD_API_KEYS": API_KEY}


def say(*parts: object) -> None:
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def to_y4m(
    source: Path,
    target: Path,
    *,
    seconds: float,
    start_s: float = 0.0,
    crop: tuple[int, int, int, int] | None = None,
    fps: float = 10.0,
) -> Path:
    """`seconds` of `source` from `start_s` at `fps`, cropped to `crop` (x, y, w, h) if
    given, as YUV4MPEG2 4:2:0 (Chromium's fake-camera file): a text header, then per frame
    "FRAME" and the Y, U and V planes (BT.601 full range, as the C420jpeg tag says). Odd
    widths or heights lose their last pixel row or column."""
    from runtime.video import read_frames

    frames = read_frames(source, fps, start_s=start_s, end_s=start_s + seconds)
    with target.open("wb") as out:
        for count, frame in enumerate(frames):
            rgb = frame.rgb
            if crop is not None:
                x, y, w, h = crop
                rgb = rgb[y : y + h, x : x + w]
            rgb = rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2]
            if count == 0:
                height, width = rgb.shape[:2]
                rate = f"{round(fps * 1000)}:1000"
                out.write(f"YUV4MPEG2 W{width} H{height} F{rate} Ip A1:1 C420jpeg\n".encode())
            r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
            y = 0.299 * r + 0.587 * g + 0.114 * b
            u = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
            v = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
            out.write(b"FRAME\n")
            for plane, step in ((y, 1), (u, 2), (v, 2)):
                if step == 2:  # 2×2 average: 4:2:0 chroma
                    plane = plane.reshape(plane.shape[0] // 2, 2, plane.shape[1] // 2, 2)
                    plane = plane.mean(axis=(1, 3))
                out.write(np.clip(np.rint(plane), 0, 255).astype(np.uint8).tobytes())
    return target


def to_webm(source: Path, target: Path, seconds: float) -> Path:
    """The first `seconds` of `source` as WebM/VP8 (what a browser can play)."""
    reader = cv2.VideoCapture(str(source))
    fps = reader.get(cv2.CAP_PROP_FPS) or 10.0
    size = int(reader.get(cv2.CAP_PROP_FRAME_WIDTH)), int(reader.get(cv2.CAP_PROP_FRAME_HEIGHT))
    writer = cv2.VideoWriter(str(target), cv2.VideoWriter_fourcc(*"VP80"), fps, size)
    if not writer.isOpened():
        raise SystemExit("OpenCV cannot write WebM/VP8 here")
    for _ in range(int(seconds * fps)):
        ok, frame = reader.read()
        if not ok:
            break
        writer.write(frame)
    writer.release()
    reader.release()
    return target


@contextlib.contextmanager
def chromium(executable: str, profile: Path, camera: Path | None = None) -> Iterator[str]:
    """Headless Chromium with a DevTools port: yields the page target's WebSocket URL.
    `camera`: a .y4m file its fake camera plays (else a synthetic pattern)."""
    command = [
        executable,
        "--headless=new",
        "--no-sandbox",  # root in a container
        "--disable-gpu",
        "--no-first-run",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--autoplay-policy=no-user-gesture-required",
        "--use-fake-ui-for-media-stream",  # allow the camera without a prompt
        "--use-fake-device-for-media-stream",  # a synthetic camera
        "--window-size=1280,1400",
        *([f"--use-file-for-fake-video-capture={camera}"] if camera else []),
        "about:blank",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        port = None
        deadline = time.monotonic() + 60
        assert process.stderr is not None
        while port is None:
            line = process.stderr.readline().decode(errors="replace")
            if match := re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line):
                port = int(match.group(1))
            elif (not line and process.poll() is not None) or time.monotonic() > deadline:
                raise SystemExit("chromium did not start its DevTools endpoint")
        # keep reading stderr so chromium never blocks on a full pipe
        drain = subprocess.Popen(["cat"], stdin=process.stderr, stdout=subprocess.DEVNULL)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
            targets = json.loads(response.read())
        page = next(t for t in targets if t["type"] == "page")
        yield page["webSocketDebuggerUrl"]
        drain.kill()
    finally:
        stop(process, timeout=10)


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page target."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for text in self.ws:
            message = json.loads(text)
            if "id" in message:
                future = self.pending.pop(message["id"], None)
                if future and not future.done():
                    future.set_result(message)
            else:
                self.events.append(message)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[number] = future
        await self.ws.send(json.dumps({"id": number, "method": method, "params": params}))
        reply = await asyncio.wait_for(future, 60)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    async def js(self, expression: str) -> Any:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = await self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await asyncio.sleep(0.25)

    async def set_file(self, selector: str, path: Path) -> None:
        root = await self.call("DOM.getDocument")
        top = root["root"]["nodeId"]
        node = await self.call("DOM.querySelector", nodeId=top, selector=selector)
        await self.call("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(path)])


# Delays every WebSocket message the page receives by window.__gadDelayMs: a slow server.
SLOW_REPLIES = """(() => {
  const Native = window.WebSocket;
  window.__gadDelayMs = 0;
  class Slow extends Native {
    set onmessage(handler) {
      super.onmessage = (event) => {
        const delay = window.__gadDelayMs;
        if (delay) setTimeout(() => handler(event), delay);
        else handler(event);
      };
    }
    get onmessage() { return super.onmessage; }
  }
  window.WebSocket = Slow;
})();"""
READY = "document.getElementById('status').dataset.state === 'ready'"
# The status line in plain words (what a person reads at a glance).
STATUS_WORDS = re.compile(
    r"^(connected · .+|(tracking 1 person|no person in view|labelling) · \d+(\.\d)? labels/s)$"
)
STATS = """(() => {
  const t = (id) => document.getElementById(id).textContent;
  const n = (id) => Number(t(id));
  const overlay = document.getElementById("overlay");
  let drawn = 0;  // overlay pixels painted: the skeleton and box over the video
  if (overlay.width && overlay.height) {
    const data = overlay.getContext("2d").getImageData(0, 0, overlay.width, overlay.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) drawn += 1;
  }
  return {status: t("status"), label: t("nowLabel"), score: t("nowScore"), drawn,
    seen: t("seen"), framing: t("framing"), meta: t("nowMeta"),
    sent: n("cSent"), labels: n("cLabels"), carried: n("cCarried"), errors: n("cErrors"),
    dropped: n("cDropped"), held: n("cHeld"), inflight: n("cInflight"),
    rtt: t("cRtt"), server: t("cServer"),
    stream: t("streamInfo"), note: t("closeNote"), model: t("modelName"),
    toasts: [...document.querySelectorAll("#toasts .toast")].map((e) => e.textContent)};
})()"""


async def open_page(ws: Any, url: str) -> DevTools:
    """The demo page loaded in the browser tab behind `ws`, with DevTools listening."""
    cdp = DevTools(ws)
    for domain in ("Page", "Runtime", "DOM", "Log"):
        await cdp.call(f"{domain}.enable")
    await cdp.call("Page.addScriptToEvaluateOnNewDocument", source=SLOW_REPLIES)
    await screen_height(cdp, 1400)
    await cdp.call("Page.navigate", url=url + "/")
    await cdp.wait_for("document.readyState === 'complete'", 20, "the page to load")
    return cdp


async def enter_key(cdp: DevTools) -> None:
    """Type the API key into the page's key field, as a user does (its change event)."""
    await cdp.js(
        f"(() => {{ const k = document.getElementById('apiKey'); k.value = '{API_KEY}';"
        " k.dispatchEvent(new Event('change')); })()"
    )


async def screen_height(cdp: DevTools, height: int) -> None:
    await cdp.call(
        "Emulation.setDeviceMetricsOverride",
        width=1280,
        height=height,
        deviceScaleFactor=1,
        mobile=False,
    )


async def screenshot(cdp: DevTools, shot: Path) -> None:
    """The whole page as a PNG at `shot`."""
    await screen_height(cdp, int(await cdp.js("document.documentElement.scrollHeight")))
    await asyncio.sleep(0.5)
    image = await cdp.call("Page.captureScreenshot", format="png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    shot.write_bytes(base64.b64decode(image["data"]))
    say(f"     screenshot: {shot}")


def console_problems(cdp: DevTools) -> list[dict[str, Any]]:
    problems = [
        e
        for e in cdp.events
        if e["method"] == "Runtime.exceptionThrown"
        or (e["method"] == "Log.entryAdded" and unexpected(e["params"]["entry"]))
        or (e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
    ]
    for problem in problems:
        say("     console:", json.dumps(problem["params"])[:400])
    return problems


class Checks:
    """A drive's checks: each printed as it is made, the failed ones kept."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def __call__(self, ok: bool, what: str) -> None:
        say(("ok   " if ok else "FAIL ") + what)
        if not ok:
            self.failures.append(what)


async def drive_camera(page_ws: str, url: str, shot: Path, seconds: float) -> list[str]:
    """The page's camera on Chromium's fake device playing a real clip: labels arrive."""
    check = Checks()

    async with websockets.connect(page_ws, max_size=64 << 20) as ws:
        cdp = await open_page(ws, url)
        await enter_key(cdp)
        model = await cdp.wait_for(
            "(() => { const t = document.getElementById('modelName').textContent;"
            " return t.includes('version') ? t : ''; })()",
            10,
            "the model panel (GET /v1/models with the key)",
        )
        say("     model:", model)
        await cdp.js("document.getElementById('cameraBtn').click()")
        await cdp.wait_for(READY, 30, "ready")
        seen: dict[str, int] = {}
        polls: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None  # the poll with the most skeleton drawn
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            poll = await cdp.js(STATS)
            polls.append(poll)
            seen[poll["label"]] = seen.get(poll["label"], 0) + 1
            if poll["seen"] == "tracking" and (best is None or poll["drawn"] > best["drawn"]):
                best = poll
                await screenshot(cdp, shot)  # the page as it shows a tracked person
        stats = await cdp.js(STATS)
        say(f"     camera after {seconds:g} s:", json.dumps(stats))
        say("     labels shown (polls at 4 Hz):", json.dumps(seen))
        shown = [p["label"] for p in polls]
        changes = sum(a != b for a, b in itertools.pairwise(shown))
        say(f"     the shown label changed {changes} times in {seconds:g} s")
        wordless = sorted({p["status"] for p in polls if not STATUS_WORDS.match(p["status"])})
        say("     status lines:", json.dumps(sorted({p["status"] for p in polls})[:6]))
        say("     framing advice:", json.dumps(sorted({p["framing"] for p in polls})))
        check(stats["labels"] >= seconds, "the camera streams labels (at least one a second)")
        check(stats["errors"] == 0, "no errors")
        check(not wordless, f"the status reads in words (not: {wordless})")
        tracked = [p for p in polls if p["seen"] == "tracking"]
        check(bool(tracked), "the page says when it tracks a person")
        check(
            best is not None and best["drawn"] > 300,
            f"the skeleton is drawn on the tracked person ({best and best['drawn']} px)",
        )
        nobody = [p for p in polls if p["label"] == "no person in view"]
        check(
            all(p["seen"] == "no person in view" for p in nobody),
            f"'no person in view' is its own state ({len(nobody)} polls), not background",
        )
        if best is None:
            await screenshot(cdp, shot)
        await cdp.js("document.getElementById('stopBtn').click()")
        await asyncio.sleep(1)
        check(not console_problems(cdp), "no JavaScript exceptions or console errors")
        cdp.reader.cancel()
    return check.failures


async def drive_teach(page_ws: str, url: str, shot: Path, label: str, takes: int) -> list[str]:
    """Teach mode on the fake camera: record `label` `takes` times (5 s each) from the live
    stream, train a new version, see the stream move to it."""
    check = Checks()
    async with websockets.connect(page_ws, max_size=64 << 20) as ws:
        cdp = await open_page(ws, url)
        await enter_key(cdp)
        await cdp.js("document.getElementById('cameraBtn').click()")
        await cdp.wait_for(READY, 30, "ready")
        await asyncio.sleep(2)
        for name in [label] * takes:
            await cdp.js(
                f"(() => {{ const l = document.getElementById('teachLabel'); l.value = '{name}';"
                " document.getElementById('recordBtn').click(); })()"
            )
            await asyncio.sleep(5)
            await cdp.js("document.getElementById('recordBtn').click()")
            note = await cdp.wait_for(
                "(() => { const t = document.getElementById('teachNote').textContent;"
                " return t.startsWith('saved') || t.startsWith('not saved') ? t : ''; })()",
                15,
                "the example saved",
            )
            say(f"     record {name!r}:", note)
            check(note.startswith("saved"), f"an example of {name!r} is saved from the stream")
        table = await cdp.js("document.getElementById('examples').innerText")
        say("     examples:", json.dumps(table))
        check(label in table, "the examples show per action")
        await cdp.js("document.getElementById('trainBtn').click()")
        started = time.monotonic()
        note = await cdp.wait_for(
            "(() => { const t = document.getElementById('teachNote').textContent;"
            " return t.startsWith('version') || t.startsWith('training failed')"
            " || t.startsWith('training not') ? t : ''; })()",
            900,
            "the training job",
        )
        say(f"     train ({time.monotonic() - started:.0f} s):", note)
        check("trained and served" in note, "a new version is trained and served")
        version = await cdp.wait_for(
            "(() => { const t = document.getElementById('modelName').textContent;"
            " return t.includes('version 2') ? t : ''; })()",
            30,
            "the stream on version 2",
        )
        check("version 2" in version, "the open stream moves to the new version")
        classes = await cdp.js("document.getElementById('modelClasses').textContent")
        check(label in classes, f"the model's classes now hold {label!r}")
        shown: dict[str, int] = {}
        for _ in range(40):
            await asyncio.sleep(0.25)
            now = (await cdp.js(STATS))["label"]
            shown[now] = shown.get(now, 0) + 1
        say("     labels shown after the switch (polls at 4 Hz):", json.dumps(shown))
        await screenshot(cdp, shot)
        await cdp.js("document.getElementById('stopBtn').click()")
        await asyncio.sleep(1)
        check(not console_problems(cdp), "no JavaScript exceptions or console errors")
        cdp.reader.cancel()
    return check.failures


def unexpected(entry: dict[str, Any]) -> bool:
    """A console error other than the 401 the keyless GET /v1/models at page load gets."""
    expected = entry.get("url", "").endswith("/v1/models") and "401" in entry.get("text", "")
    return entry["level"] == "error" and not expected


async def drive(page_ws: str, url: str, video: Path, shot: Path, seconds: float) -> list[str]:
    check = Checks()

    async with websockets.connect(page_ws, max_size=64 << 20) as ws:
        cdp = await open_page(ws, url)
        # 0. no key: the server refuses the stream with 1008, the page says why
        await cdp.js("document.getElementById('connectBtn').click()")
        note = await cdp.wait_for(
            "document.getElementById('closeNote').textContent", 10, "the close message"
        )
        say("     without a key:", note)
        check("1008" in note and "API key required" in note, "a refused key reads as such")
        await enter_key(cdp)
        model = await cdp.wait_for(
            "document.getElementById('modelName').textContent.includes('version')",
            10,
            "the model panel (GET /v1/models with the key)",
        )
        check(bool(model), "the model panel fills from /v1/models")

        # 1. a video file through the page's file input
        await cdp.set_file("#videoFile", video)
        await cdp.wait_for(READY, 20, "ready")
        await asyncio.sleep(seconds)
        stats = await cdp.js(STATS)
        say("     after", seconds, "s of video:", json.dumps(stats))
        check(stats["labels"] > 0 and stats["label"] not in ("", "—"), "labels arrive and show")
        check(stats["errors"] == 0 and stats["dropped"] == 0, "no errors, nothing dropped")
        expected = seconds * 4  # the model's fps: ~one row per 0.25 s of video
        check(stats["labels"] >= 0.5 * expected, f"about {expected:.0f} rows in {seconds:g} s")
        check(stats["sent"] <= seconds * 8 + 4, "at most 2× the model's fps sent")

        # 2. classify the same clip
        await cdp.set_file("#clipFile", video)
        await cdp.js("document.getElementById('classifyForm').requestSubmit()")
        await cdp.wait_for(
            "!document.getElementById('clipResult').classList.contains('hidden')",
            120,
            "the classify result",
        )
        clip = await cdp.js(
            "({label: document.getElementById('clipLabel').textContent,"
            " meta: document.getElementById('clipMeta').textContent,"
            " segments: document.querySelectorAll('#segments tr').length})"
        )
        say("     classify:", json.dumps(clip))
        check(bool(clip["label"]) and clip["segments"] > 0, "Classify shows a label and segments")

        # the screenshot: the stream running, the clip classified
        await asyncio.sleep(1.0)
        await screenshot(cdp, shot)

        # 3. reconnect: the same stream id resumes its window
        before = await cdp.js(STATS)
        await cdp.js("document.getElementById('reconnectBtn').click()")
        status = await cdp.wait_for(
            "(() => { const s = document.getElementById('streamInfo').textContent;"
            " return s.includes('resumed') ? s : ''; })()",
            20,
            "a resumed stream",
        )
        say("     reconnect:", status)
        check("resumed" in status, "Reconnect resumes the window")
        await asyncio.sleep(2)
        after = await cdp.js(STATS)
        check(after["labels"] > before["labels"], "labels go on after the reconnect")

        # 4. stop: {"type":"end"}, the server ends the stream with 1000
        await cdp.js("document.getElementById('stopBtn').click()")
        stream = await cdp.wait_for(
            "(() => { const s = document.getElementById('streamInfo').textContent;"
            " return s.includes('ended') ? s : ''; })()",
            20,
            "the end message",
        )
        say("     stop:", stream)
        await cdp.wait_for(
            "document.getElementById('status').textContent === 'ended'", 10, "the close"
        )
        check(True, "Stop ends the stream (end message, close 1000)")

        # 5. the camera (Chromium's fake device), on a new stream
        await cdp.js("document.getElementById('newIdBtn').click()")
        await cdp.js("document.getElementById('cameraBtn').click()")
        await cdp.wait_for(READY, 20, "ready")
        start = (await cdp.js(STATS))["labels"]
        await asyncio.sleep(3)
        camera = await cdp.js(STATS)
        say("     camera:", json.dumps(camera))
        check(camera["labels"] > start and camera["errors"] == 0, "the camera streams labels")

        # 6. a slow server (replies held 400 ms): the page holds frames back, never queues
        await cdp.js("window.__gadDelayMs = 400")
        before = await cdp.js(STATS)
        peak = 0
        for _ in range(16):
            await asyncio.sleep(0.25)
            peak = max(peak, (await cdp.js(STATS))["inflight"])
        slow = await cdp.js(STATS)
        say("     slow server:", json.dumps(slow), "peak in flight", peak)
        sent = slow["sent"] - before["sent"]
        check(
            slow["held"] > before["held"] and peak <= 2 and sent <= 4 * 2 / 0.4 + 2,
            "a slow server: at most 2 frames in flight, the rest held back",
        )
        await cdp.js("document.getElementById('stopBtn').click()")
        await asyncio.sleep(1)

        check(not console_problems(cdp), "no JavaScript exceptions or console errors")
        cdp.reader.cancel()
    return check.failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, help="default: the demo's render_0006.mp4")
    parser.add_argument(
        "--camera", type=Path, help="a real clip as the fake webcam (the pose demo serves it)"
    )
    parser.add_argument("--camera-start", type=float, default=0.0, help="--camera from S s")
    parser.add_argument(
        "--camera-crop", type=crop_box, help="--camera cropped to X,Y,W,H (a closer camera)"
    )
    parser.add_argument("--model", type=Path, help="package to serve (default: a demo's)")
    parser.add_argument(
        "--teach", metavar="LABEL", help="with --camera: Teach mode (record LABEL, train, switch)"
    )
    parser.add_argument("--takes", type=int, default=3, help="--teach: examples of LABEL")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    parser.add_argument("--screenshot", type=Path, help="default docs/img/demo-page.png "
                        "(docs/img/demo-camera-pose.png with --camera)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if shutil.which(args.chromium) is None:
        sys.stderr.write(f"no chromium at {args.chromium!r}: apt-get install -y chromium\n")
        return 2
    if args.camera:
        return check_camera(args)

    from gad.demo import build_demo, demo_root, is_built, package_dir

    root = demo_root(kind="render")
    if not is_built(root, kind="render"):
        build_demo(root, kind="render")
    video = args.video or root / "render" / "videos" / "render_0006.mp4"
    shot = args.screenshot or ROOT / "docs" / "img" / "demo-page.png"
    with tempfile.TemporaryDirectory(prefix="gad-browser-") as folder:
        tmp = Path(folder)
        clip = to_webm(video, tmp / f"{video.stem}.webm", seconds=args.seconds + 20)
        with (
            served(args.model or package_dir(root, kind="render"), env=SERVE_ENV) as server,
            chromium(args.chromium, tmp / "profile") as page,
        ):
            say(f"server {server.url}, video {video.name} as {clip.name}")
            failures = asyncio.run(drive(page, server.url, clip, shot, args.seconds))
    say(f"\n{len(failures)} check(s) failed" if failures else "\nall browser checks passed")
    return 1 if failures else 0


def crop_box(text: str) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"crop must be X,Y,W,H in pixels; got {text!r}") from None
    return x, y, w, h


def check_camera(args: argparse.Namespace) -> int:
    from gad.demo import build_demo, demo_root

    model = args.model or build_demo(demo_root(kind="pose"), kind="pose")
    default = "demo-teach.png" if args.teach else "demo-camera-pose.png"
    shot = args.screenshot or ROOT / "docs" / "img" / default
    with tempfile.TemporaryDirectory(prefix="gad-camera-") as folder:
        tmp = Path(folder)
        env = dict(SERVE_ENV)
        if args.teach:  # a copy of the demo's layout: version 2 is written there, not in the cache
            if (model / "manifest.json").is_file():
                model = model.parent  # the model folder, where versions sit side by side
            copy = tmp / "models" / model.name
            shutil.copytree(model, copy)
            (tmp / "run").symlink_to(model.resolve().parents[1] / "run")
            model = copy
            env |= {"GAD_DATA_DIR": str(tmp / "examples"), "GAD_MODEL_WATCH_S": "0"}
        camera = to_y4m(
            args.camera,
            tmp / f"{args.camera.stem}.y4m",
            seconds=args.seconds + 10,
            start_s=args.camera_start,
            crop=args.camera_crop,
        )
        with (
            served(model, env=env) as server,
            chromium(args.chromium, tmp / "profile", camera=camera) as page,
        ):
            say(f"server {server.url} ({model}), camera {args.camera.name} as {camera.name}")
            if args.teach:
                drive = drive_teach(page, server.url, shot, args.teach, args.takes)
            else:
                drive = drive_camera(page, server.url, shot, args.seconds)
            failures = asyncio.run(drive)
    say(f"\n{len(failures)} check(s) failed" if failures else "\nall camera checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
