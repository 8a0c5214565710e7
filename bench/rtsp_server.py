"""A real RTSP server for the gateway's tests and benchmark: GStreamer's gst-rtsp-server
(Debian's gir1.2-gst-rtsp-server-1.0), run by the SYSTEM python3 (which has `gi`), never
imported by the project's venv (bench/rtsp.py starts it).

    /usr/bin/python3 bench/rtsp_server.py --port 8554 --video clip.mp4 [--path cam] ... [--h264]

Serves each video at rtsp://127.0.0.1:PORT/PATH (paths cam0, cam1, ... unless --path is
given per video), played in real time from its start for each new client session, as a
camera's stream is: the RTP timestamps are the clip's own. By default each session decodes
the file and re-encodes it to H.264 (any file GStreamer reads); with --h264 the files are
H.264 in MP4 already and are sent as they are (no decoding or encoding here: the server's
CPU stays out of a benchmark of what receives them, as a camera encodes on its own chip).
Prints "ready PORT" on stdout once listening. SIGTERM or SIGKILL ends it (the tests kill it
mid-stream to play a camera that drops).
"""

import argparse
import signal
import sys


def pipeline(video: str, *, h264: bool = False) -> str:
    if h264:  # already H.264: demux and packetise only
        return (
            f'( filesrc location="{video}" ! qtdemux ! h264parse ! '
            "rtph264pay name=pay0 pt=96 config-interval=1 )"
        )
    # decodebin: any file GStreamer reads; x264 at zero latency with a key frame every
    # second, so a client joining (or rejoining) starts decoding within a second.
    source = f'filesrc location="{video}" ! decodebin'
    return (
        f"( {source} ! videoconvert ! video/x-raw,format=I420 ! "
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 bitrate=800 ! "
        "rtph264pay name=pay0 pt=96 config-interval=1 )"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--video", action="append", required=True)
    parser.add_argument("--path", action="append", help="mount path per video")
    parser.add_argument("--h264", action="store_true", help="the videos are H.264 in MP4: send")
    args = parser.parse_args()
    paths = args.path or [f"cam{i}" for i in range(len(args.video))]
    if len(paths) != len(args.video):
        sys.exit("one --path per --video")

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    mounts = server.get_mount_points()
    for video, path in zip(args.video, paths, strict=True):
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(pipeline(video, h264=args.h264))
        factory.set_shared(False)
        mounts.add_factory(f"/{path}", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{args.port}")
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    print(f"ready {args.port}", flush=True)  # noqa: T201 - the parent waits for this line
    loop.run()


if __name__ == "__main__":
    main()
