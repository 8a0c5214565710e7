"""`gad bench ...`: benchmarks that print a Markdown table (and write it with --out).

    gad bench compare --data data/synth --backbone tiny --out docs/benchmarks/compare-tiny.md
    gad bench forward --backbone tiny --backbone smollm2-135m
    gad bench encoder --threads 2
    gad bench engine --backbone tiny --threads 2
    gad bench clip --backbone tiny
    gad bench paper-speed            # the paper's shapes on CUDA, reduced ones on a CPU
    gad bench service --redis-url redis://127.0.0.1:6379/0
    gad bench load
    gad bench soak --minutes 10
    gad bench gateway --cameras 2 4 8 12 16 24 32

service, load and soak are torch-free: they run in the serving image (gateway needs
GStreamer's RTSP server for the system python3, which the image does not have).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gad.commands.data import frame_size
from gad.commands.train import add_train_arguments, train_config
from gad.output import emit_table
from gad.subcommands import Subcommands, add_group

HELP = "benchmarks that print a table (medians of several runs)"
DEFAULT_BACKBONES = ["tiny", "smollm2-135m"]


def register(commands: Subcommands) -> None:
    commands.add("bench", build, help=HELP, description=HELP)


def build(parser: argparse.ArgumentParser) -> None:
    bench = add_group(parser)
    bench.add(
        "compare",
        build_compare,
        help="train + evaluate generative, discriminative and GAD side by side",
        description="Same data, backbone, seed and schedule for each classifier kind; one "
        "Markdown table of mAP, accuracy, training time and per-frame latency. The generative "
        "model gives two rows: 'generative', the paper's baseline (free greedy decoding, the "
        "text mapped to the nearest label by edit distance), and 'generative, constrained' "
        "(decoding through the label trie).",
    )
    bench.add(
        "forward",
        build_forward,
        help="parameter counts and one-forward latency per backbone",
        description="Build a GAD classifier on each backbone with the paper's LoRA settings "
        "(r=128, α=256) and time class_logits on one window (long + short frames): "
        "median of --repeats runs after one warm-up. Prints a Markdown table.",
    )
    bench.add(
        "encoder",
        build_encoder,
        help="frames/s of the frame encoders, PyTorch vs onnxruntime",
        description="Load each frame encoder, export it to ONNX in a temporary folder (checked "
        "against PyTorch), and time 640×480 camera-like frames at each batch size: cv2 "
        "preprocessing, the PyTorch encoder and the onnxruntime (CPU) encoder, as frames/s, "
        "median of --repeats runs after one warm-up. Prints a Markdown table. Run it on an "
        "otherwise idle machine: PyTorch's OpenMP threads slow down badly when other "
        "processes share the cores.",
    )
    bench.add(
        "engine",
        build_engine,
        help="per-frame latency (generative vs one-pass head) and engine throughput",
        description="Per frame, same backbone, window and batch: greedy generative decoding "
        "with a KV cache vs the one-pass [CLS] head in PyTorch, both with LoRA as adapters "
        "and both with LoRA merged (a ratio never mixes the two); head.onnx in onnxruntime "
        "vs the merged PyTorch head; then windows/s of the naive loop (PyTorch, batch 1) vs "
        "the engine at batch 1/4/16/64. Random weights (latency does not depend on them). "
        "Prints Markdown tables.",
    )
    bench.add(
        "clip",
        build_clip,
        help="per-answer latency: the clip model's one-pass heads vs generative decoding",
        description="Same backbone, clip length and device, LoRA as adapters and merged on "
        "both sides: per answer, the step question and the three questions asked one at a "
        "time, by the [CLS] heads vs by constrained greedy decoding; then, labelled apart, "
        "the heads' one batched pass of the three questions vs three decodes. Random "
        "weights. Prints Markdown tables.",
    )
    bench.add(
        "paper-speed",
        build_paper_speed,
        help="the paper's speed claim: the GAD head vs free decoding at the OAD and COIN shapes",
        description="One row per task, LoRA merged on both sides, batch 1: OAD (a window of "
        "128 + 32 rows, one token per row, a per-frame answer) and COIN (1,200 frames × 10 "
        "tokens joined by ',', a step answer), the GAD [CLS] head against free greedy "
        "decoding (the paper's generative baseline), each decode capped at the answer's "
        "token length and the tokens it produced counted. On CUDA: the paper's shapes on "
        "llama3.2-1b-random in bf16; on a CPU: reduced shapes in float32, labelled "
        "'reduced: ...' (--full: the paper's shapes anywhere). Prints a Markdown table.",
    )
    bench.add(
        "service",
        build_service,
        help="concurrent streams against a real gad serve: frames/s, latency, drops",
        description="Start `gad serve` on the model (in-process cache, then Redis when "
        "--redis-url is given), run N concurrent streams of a video's JPEG frames paced at "
        "the model's fps for --seconds each, and print labelled frames/s, server and client "
        "latency percentiles, drops, and the engine's windows/s at the same batch.",
    )
    bench.add(
        "load",
        build_load,
        help="ramp concurrent streams over two replicas sharing Redis: the knee, p99, "
        "CPU, memory and Redis per stream",
        description="Start --replicas `gad serve` replicas on one Redis (a private "
        "redis-server unless --redis-url), then ramp N concurrent streams (4, 8, 16, 32, "
        "48, 64, ... up to --max-streams; round-robin over the replicas) of a video's JPEG "
        "frames paced at the model's fps, --seconds per step, until p99 server latency "
        "passes --budget-ms or frames are dropped, refused or left unanswered; bisect "
        "once or twice. Prints per step: latency percentiles, drops, machine and "
        "per-stream CPU, RSS and Redis memory per stream; and the knee. Loopback only; "
        "bounded (at most 256 streams, 600 s per step).",
    )
    bench.add(
        "delivery",
        build_delivery,
        help="live vs lossless delivery under the same offered overload",
        description="Start one `gad serve` on the model and offer --streams streams "
        "--rate new frames/s each (above what it can label) for --seconds, once with "
        "?delivery=live (the queue drops the oldest frames: latency stays flat) and once "
        "with ?delivery=lossless (the server stops reading: TCP slows the sender, every "
        "frame gets its label, latency grows). Prints labels, drops and latency per mode.",
    )
    bench.add(
        "gateway",
        build_gateway,
        help="N RTSP cameras through one gad gateway to two replicas: cameras held in real "
        "time, gateway CPU per camera, event latency",
        description="For each N of --cameras: GStreamer's RTSP server serving N paths (the "
        "video looped, H.264, sent as encoded), one `gad gateway` on a generated YAML of the N "
        "cameras at the model's fps, round-robin over --replicas `gad serve` replicas "
        "(started once) that share one Redis (a private redis-server unless --redis-url) and "
        "publish their events to a Redis stream. After the first label of every camera and "
        "--warmup seconds, --seconds are measured: labels per camera per second, each "
        "stream's lag (now - capture time of its newest stored row), frames dropped at the "
        "gateway and its round-trip histogram (its /metrics), the CPU of the gateway, the "
        "replicas, the RTSP server and Redis, and every event's latency from the capture of "
        "the frame that decided it to its entry in the Redis stream (XREAD). Prints a "
        "Markdown table and the knee: the largest N with every camera held in real time.",
    )
    bench.add(
        "soak",
        build_soak,
        help="hold an overload for minutes and sample the server's RSS (memory growth)",
        description="Start one `gad serve` on Redis (a private redis-server unless "
        "--redis-url), stream --streams streams each sending --rate new "
        "frames per second (several times what it can process: drops are counted) for "
        "--minutes, sample the server's RSS every --every seconds, and print the series "
        "and its growth. Bounded: at most 120 minutes.",
    )


# --- compare -------------------------------------------------------------------------------


def build_compare(compare: argparse.ArgumentParser) -> None:
    from model.config import CLASSIFIER_KINDS

    compare.add_argument("--data", type=Path, required=True)
    compare.add_argument("--runs", type=Path, default=Path("runs/compare"), help="run folders")
    compare.add_argument("--out", type=Path, default=None, help="also write the table here")
    compare.add_argument(
        "--kinds",
        default=",".join(CLASSIFIER_KINDS),
        help="comma-separated classifier kinds to train (generative: both decodings)",
    )
    compare.add_argument("--limit-test-videos", type=int, default=None)
    add_train_arguments(compare)
    compare.set_defaults(handler=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    from training.compare import compare_kinds

    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    table = compare_kinds(train_config(args, args.runs), kinds, limit_test=args.limit_test_videos)
    emit_table(table, args.out)
    print(json.dumps({"runs": str(args.runs)}))
    return 0


# --- forward, encoder, engine, clip: the model on random weights ----------------------------


def build_forward(bench: argparse.ArgumentParser) -> None:
    from model.config import CLASSIFIER_KINDS

    bench.add_argument(
        "--backbone",
        action="append",
        help="tiny | smollm2-135m | PATH (repeatable; default: tiny and smollm2-135m)",
    )
    bench.add_argument("--kind", choices=CLASSIFIER_KINDS, default="gad")
    bench.add_argument("--long", type=int, default=128, help="long-memory frames (default 128)")
    bench.add_argument("--short", type=int, default=32, help="short-window frames (default 32)")
    bench.add_argument("--feature-dim", type=int, default=2048, help="feature size (THUMOS: 2048)")
    bench.add_argument("--classes", type=int, default=22, help="class count (THUMOS: 22)")
    bench.add_argument("--batch", type=int, default=1, help="windows per forward (default 1)")
    bench.add_argument("--repeats", type=int, default=5, help="timed runs (default 5)")
    bench.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    bench.add_argument("--out", type=Path, default=None, help="also write the table here")
    bench.set_defaults(handler=run_forward)


def run_forward(args: argparse.Namespace) -> int:
    from bench.forward import ForwardBench, render_table, run_forward_bench

    bench = ForwardBench(
        kind=args.kind,
        long_frames=args.long,
        short_frames=args.short,
        feature_dim=args.feature_dim,
        num_classes=args.classes,
        batch=args.batch,
        repeats=args.repeats,
        threads=args.threads,
    )
    rows = [run_forward_bench(spec, bench) for spec in args.backbone or DEFAULT_BACKBONES]
    return emit_table(render_table(rows, bench), args.out)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def build_encoder(bench: argparse.ArgumentParser) -> None:
    bench.add_argument(
        "--encoder",
        action="append",
        help="efficientnet-lite0 | resnet50:PATH | dinov2:PATH "
        "(repeatable; default: efficientnet-lite0)",
    )
    bench.add_argument(
        "--batch",
        type=_positive,
        action="append",
        help="frames per call (repeatable; default: 1 and 16)",
    )
    bench.add_argument("--repeats", type=_positive, default=5, help="timed runs (default 5)")
    bench.add_argument(
        "--threads", type=_positive, default=None, help="CPU threads for torch and onnxruntime"
    )
    bench.add_argument("--out", type=Path, default=None, help="also write the table here")
    bench.set_defaults(handler=run_encoder)


def run_encoder(args: argparse.Namespace) -> int:
    from bench.encoder import EncoderBench, render_encoder_table, run_encoder_bench

    default = EncoderBench()
    bench = EncoderBench(
        encoders=tuple(args.encoder or default.encoders),
        batches=tuple(args.batch or default.batches),
        repeats=args.repeats,
        threads=args.threads,
    )
    rows = run_encoder_bench(bench)
    return emit_table(render_encoder_table(rows, bench), args.out)


def build_engine(bench: argparse.ArgumentParser) -> None:
    bench.add_argument(
        "--backbone",
        action="append",
        help="tiny | smollm2-135m | llama3.2-1b-random | PATH "
        "(repeatable; default: tiny and smollm2-135m)",
    )
    bench.add_argument("--long", type=int, default=128, help="long-memory frames (default 128)")
    bench.add_argument("--short", type=int, default=32, help="short-window frames (default 32)")
    bench.add_argument("--feature-dim", type=int, default=2048, help="feature size (default 2048)")
    bench.add_argument("--repeats", type=int, default=5, help="timed runs per figure (default 5)")
    bench.add_argument("--threads", type=int, default=None, help="CPU threads (torch and ORT)")
    bench.add_argument(
        "--batch", type=int, action="append", help="engine batch sizes (default 1 4 16 64)"
    )
    bench.add_argument(
        "--latency-batch", type=int, action="append", help="per-frame latency batches (default 1)"
    )
    bench.add_argument("--device", default="cpu", help="torch device: cpu | cuda (default cpu)")
    bench.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    bench.add_argument("--no-onnx", action="store_true", help="skip the onnxruntime rows")
    bench.add_argument(
        "--step",
        action="store_true",
        help="also the streaming step: step.onnx vs head.onnx of one model at window "
        "long + short (LoRA merged in both, onnxruntime, the engine batches)",
    )
    bench.add_argument(
        "--merged",
        action="store_true",
        help="accepted for old command lines: both LoRA states are always timed",
    )
    bench.add_argument("--out", type=Path, default=None, help="also write the tables here")
    bench.set_defaults(handler=run_engine)


def run_engine(args: argparse.Namespace) -> int:
    from bench.engine import EngineBench, render_engine_tables, run_engine_bench

    bench = EngineBench(
        long_frames=args.long,
        short_frames=args.short,
        feature_dim=args.feature_dim,
        repeats=args.repeats,
        threads=args.threads,
        latency_batches=tuple(args.latency_batch or [1]),
        engine_batches=tuple(args.batch or [1, 4, 16, 64]),
        device=args.device,
        dtype=args.dtype,
        onnx=not args.no_onnx,
    )
    rows, steps = [], []
    for spec in args.backbone or DEFAULT_BACKBONES:
        rows += run_engine_bench(spec, bench)
        if args.step:
            from bench.streaming import bench_onnx_steps

            steps += bench_onnx_steps(
                spec,
                window=args.long + args.short,
                batches=bench.engine_batches,
                repeats=args.repeats,
                threads=args.threads,
                feature_dim=args.feature_dim,
            )
        print(f"done: {spec}", flush=True)
    table = render_engine_tables(rows, bench)
    if steps:
        from bench.streaming import render

        table += "\n\n**Streaming step** (a streaming package's step.onnx):\n\n" + render(
            steps, args.repeats
        )
    return emit_table(table, args.out)


def build_clip(bench: argparse.ArgumentParser) -> None:
    bench.add_argument(
        "--backbone", action="append", help="tiny | smollm2-135m | llama3.2-1b-random | PATH"
    )
    bench.add_argument("--clip-frames", type=int, default=32, help="rows per clip (default 32)")
    bench.add_argument("--feature-dim", type=int, default=2048)
    bench.add_argument("--repeats", type=int, default=10)
    bench.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    bench.add_argument("--device", default="cpu", help="cpu | cuda")
    bench.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    bench.add_argument("--out", type=Path, default=None, help="also write the table here")
    bench.set_defaults(handler=run_clip)


def run_clip(args: argparse.Namespace) -> int:
    from bench.clip import ClipBench, render_clip_bench, run_clip_bench

    bench = ClipBench(
        clip_frames=args.clip_frames,
        feature_dim=args.feature_dim,
        repeats=args.repeats,
        threads=args.threads,
        device=args.device,
        dtype=args.dtype,
    )
    rows = []
    for spec in args.backbone or DEFAULT_BACKBONES:
        rows += run_clip_bench(spec, bench)
        print(f"done: {spec}", flush=True)
    return emit_table(render_clip_bench(rows, bench), args.out)


def build_paper_speed(bench: argparse.ArgumentParser) -> None:
    bench.add_argument(
        "--full",
        action="store_true",
        help="the paper's shapes (llama3.2-1b-random, COIN 1,200 frames) even on a CPU",
    )
    bench.add_argument("--device", default=None, help="cpu | cuda (default: cuda if present)")
    bench.add_argument(
        "--dtype",
        default=None,
        choices=["float32", "bfloat16", "float16"],
        help="default: bfloat16 on CUDA, float32 on a CPU",
    )
    bench.add_argument("--backbone", default=None, help="override the backbone")
    bench.add_argument("--oad-long", type=_positive, default=None, help="OAD long frames (128)")
    bench.add_argument("--oad-short", type=_positive, default=None, help="OAD short frames (32)")
    bench.add_argument("--coin-frames", type=_positive, default=None, help="COIN frames (1,200)")
    bench.add_argument(
        "--coin-tokens", type=_positive, default=None, help="COIN tokens per frame (10)"
    )
    bench.add_argument("--task", choices=["OAD", "COIN"], action="append", help="default: both")
    bench.add_argument(
        "--repeats", type=_positive, default=None, help="timed runs (10 on CUDA, 30 on a CPU)"
    )
    bench.add_argument("--threads", type=_positive, default=None, help="torch CPU threads")
    bench.add_argument("--out", type=Path, default=None, help="also write the table here")
    bench.set_defaults(handler=run_paper_speed)


def run_paper_speed(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from bench.paper_speed import default_bench, render_paper_speed
    from bench.paper_speed import run_paper_speed as run

    given = {
        "backbone": args.backbone,
        "oad_long": args.oad_long,
        "oad_short": args.oad_short,
        "coin_frames": args.coin_frames,
        "coin_tokens": args.coin_tokens,
        "repeats": args.repeats,
        "dtype": args.dtype,
        "threads": args.threads,
        "tasks": tuple(args.task) if args.task else None,
    }
    bench = default_bench(args.device, full=args.full)
    bench = replace(bench, **{k: v for k, v in given.items() if v is not None})
    return emit_table(render_paper_speed(run(bench), bench), args.out)


# --- service, load, soak: a real `gad serve` (torch-free, like the service) -----------------


def build_service(bench: argparse.ArgumentParser) -> None:
    bench.add_argument("--model", type=Path, help="package (default: the render demo)")
    bench.add_argument("--video", type=Path, help="video to stream (default: a render demo video)")
    bench.add_argument("--streams", type=int, action="append", help="N (default 1 4 16)")
    bench.add_argument("--seconds", type=float, default=20.0, help="per run (default 20)")
    bench.add_argument("--redis-url", help="also run with this Redis as the cache")
    bench.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    bench.add_argument("--out", type=Path, help="also write the table here")
    bench.set_defaults(handler=run_service)


def build_load(load: argparse.ArgumentParser) -> None:
    load.add_argument("--model", type=Path, help="package (default: the render demo)")
    load.add_argument("--video", type=Path, help="video to stream (default: a render demo video)")
    load.add_argument(
        "--streams", type=int, action="append", help="run exactly these N, all of them (repeatable)"
    )
    load.add_argument("--max-streams", type=int, default=96, help="ramp up to (default 96)")
    load.add_argument("--seconds", type=float, default=20.0, help="per step (default 20)")
    load.add_argument(
        "--budget-ms", type=float, default=250.0, help="p99 server latency budget (default 250)"
    )
    load.add_argument("--replicas", type=int, default=2, help="gad serve processes (default 2)")
    load.add_argument("--redis-url", help="use this Redis (default: a private redis-server)")
    load.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    load.add_argument(
        "--delivery",
        choices=["live", "lossless"],
        default="live",
        help="every stream's delivery mode (default live, as cameras)",
    )
    load.add_argument("--out", type=Path, help="also write the table here")
    load.set_defaults(handler=run_load)


def build_gateway(gateway: argparse.ArgumentParser) -> None:
    gateway.add_argument("--model", type=Path, help="package (default: the render demo)")
    gateway.add_argument(
        "--video", type=Path, help="what every camera plays (default: a render demo test video)"
    )
    gateway.add_argument(
        "--cameras",
        type=int,
        nargs="+",
        default=[2, 4, 8, 12, 16, 24, 32],
        metavar="N",
        help="camera counts to run, each in turn (default 2 4 8 12 16 24 32)",
    )
    gateway.add_argument("--seconds", type=float, default=30.0, help="measured per N (default 30)")
    gateway.add_argument(
        "--warmup", type=float, default=5.0, help="after every camera's first label (default 5)"
    )
    gateway.add_argument(
        "--camera-size",
        type=frame_size,
        metavar="WxH",
        help="resize the video for the cameras (e.g. 1280x720; default: its own size)",
    )
    gateway.add_argument("--replicas", type=int, default=2, help="gad serve processes (default 2)")
    gateway.add_argument("--redis-url", help="use this Redis (default: a private redis-server)")
    gateway.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    gateway.add_argument("--json", action="store_true", help="print JSON instead of the table")
    gateway.add_argument("--out", type=Path, help="also write the table here")
    gateway.set_defaults(handler=run_gateway)


def run_gateway(args: argparse.Namespace) -> int:
    from bench.gateway import bench_gateway, render_gateway
    from runtime.errors import GADError
    from runtime.system import cpu_name

    model, video = _package_and_video(args)
    size = args.camera_size
    if size is not None and not all(32 <= side <= 4096 for side in size):
        raise GADError(f"--camera-size: each side 32 to 4096 pixels, got {size[0]}x{size[1]}")
    result = bench_gateway(
        model,
        video,
        cameras=args.cameras,
        seconds=args.seconds,
        warmup=args.warmup,
        replicas=args.replicas,
        redis_url=args.redis_url,
        threads=args.threads,
        size=size,
    )
    table = render_gateway(result, package=model, cpu=cpu_name())
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
        return 0
    return emit_table(table, None)


def build_soak(soak: argparse.ArgumentParser) -> None:
    soak.add_argument("--model", type=Path, help="package (default: the render demo)")
    soak.add_argument("--video", type=Path, help="video to stream (default: a render demo video)")
    soak.add_argument("--minutes", type=float, default=10.0, help="how long (default 10)")
    soak.add_argument("--streams", type=int, default=8, help="concurrent streams (default 8)")
    soak.add_argument(
        "--rate", type=float, default=40.0, help="frames/s sent per stream (default 40)"
    )
    soak.add_argument("--every", type=float, default=10.0, help="RSS sample period s (default 10)")
    soak.add_argument("--redis-url", help="use this Redis (default: a private redis-server)")
    soak.add_argument("--out", type=Path, help="also write the result here")
    soak.set_defaults(handler=run_soak)


def _package_and_video(args: argparse.Namespace) -> tuple[Path, Path]:
    """--model and --video, by default the render demo (`gad demo build --kind render`, not
    the served pose demo: its package and video are what the benchmark figures were measured
    on) and a test video of its benchmark."""
    from gad.demo import demo_root, demo_video, package_dir

    root = demo_root(kind="render")
    return args.model or package_dir(root, kind="render"), args.video or demo_video(root)


def run_service(args: argparse.Namespace) -> int:
    from bench.service import bench_service, render_table
    from runtime.system import cpu_name

    model, video = _package_and_video(args)
    rows = bench_service(
        model,
        video,
        streams=args.streams or [1, 4, 16],
        seconds=args.seconds,
        redis_url=args.redis_url,
        threads=args.threads,
    )
    return emit_table(render_table(rows, package=model, cpu=cpu_name()), args.out)


def run_load(args: argparse.Namespace) -> int:
    from bench.load import bench_load, render_load
    from runtime.system import cpu_name

    model, video = _package_and_video(args)
    result = bench_load(
        model,
        video,
        streams=args.streams,
        max_streams=args.max_streams,
        seconds=args.seconds,
        budget_ms=args.budget_ms,
        replicas=args.replicas,
        redis_url=args.redis_url,
        threads=args.threads,
        delivery=args.delivery,
    )
    return emit_table(render_load(result, package=model, cpu=cpu_name()), args.out)


def build_delivery(delivery: argparse.ArgumentParser) -> None:
    delivery.add_argument("--model", type=Path, help="package (default: the render demo)")
    delivery.add_argument("--video", type=Path, help="video (default: a render demo test video)")
    delivery.add_argument("--streams", type=int, default=4, help="concurrent streams (default 4)")
    delivery.add_argument(
        "--rate", type=float, default=25.0, help="new frames/s offered per stream (default 25)"
    )
    delivery.add_argument("--seconds", type=float, default=15.0, help="per mode (default 15)")
    delivery.add_argument("--out", type=Path, help="also write the table here")
    delivery.set_defaults(handler=run_delivery)


def run_delivery(args: argparse.Namespace) -> int:
    from bench.delivery import bench_delivery, render_delivery
    from runtime.system import cpu_name

    model, video = _package_and_video(args)
    runs = bench_delivery(model, video, streams=args.streams, rate=args.rate, seconds=args.seconds)
    return emit_table(render_delivery(runs, package=model, cpu=cpu_name()), args.out)


def run_soak(args: argparse.Namespace) -> int:
    from bench.soak import MiB, render_soak, soak

    def progress(at: float, rss: int, result) -> None:
        print(
            f"{at:6.0f} s  RSS {rss / MiB:7.1f} MiB  sent {result.sent}  labels "
            f"{result.labels}  dropped {result.dropped}",
            flush=True,
        )

    model, video = _package_and_video(args)
    result = soak(
        model,
        video,
        minutes=args.minutes,
        streams=args.streams,
        rate=args.rate,
        every_s=args.every,
        redis_url=args.redis_url,
        on_sample=progress,
    )
    return emit_table(render_soak(result), args.out)
