"""`gad data synth`, `gad data render`, `gad data extract`: datasets in the standard OAD
feature layout.

    gad data synth --out data/synth
    gad data synth --procedures --out data/procedures
    gad data render --out data/render
    gad data mocap --out data/mocap
    gad data extract data/render/videos --annotations data/render/annotations.csv \\
        --split data/render/split.json --out data/render-features
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gad.subcommands import Subcommands, add_group

HELP = "make datasets in the standard OAD feature layout"


def register(commands: Subcommands) -> None:
    commands.add("data", build, help=HELP, description=HELP)


def build(parser: argparse.ArgumentParser) -> None:
    data = add_group(parser)
    data.add(
        "synth",
        build_synth,
        help="write the synthetic OAD benchmark in the standard feature layout",
        description="Untrimmed videos of verb+object actions (open/close drawer, ...) whose "
        "frames only make sense in their window; features, target_perframe and "
        "data_info.json as THUMOS-style loaders expect. Seeded: same seed, same files.",
    )
    data.add(
        "render",
        build_render,
        help="render a benchmark of stick-figure action videos (mp4 + annotations.csv)",
        description="Real video files of a stick figure performing 9 actions (raise / wave "
        "left or right arm, kick left or right leg, squat, jump, clap hands) between idle "
        "or walking background, on varied scenes with lighting changes, camera shake and "
        "noise. The figure's left limbs are red, its right limbs blue, so ImageNet features "
        "can tell left from right. Writes OUT/videos/*.mp4, OUT/annotations.csv "
        "(video,start_s,end_s,label), OUT/split.json and OUT/render.json. Seeded: same "
        "arguments, same videos. Next: `gad data extract OUT/videos --annotations "
        "OUT/annotations.csv --split OUT/split.json --out DATA`.",
    )
    data.add(
        "mocap",
        build_mocap,
        help="write pose-feature videos from real motion capture (DeepMimic clips, BVH)",
        description="Untrimmed videos of a 3D body performing real motion-capture clips "
        "(walk, run, jump, kick, punch, dance, spin, cartwheel, crawl, get up; from BVH "
        "recordings a fall and getting up again, climbing, boxing, standing jumps) and the "
        "rendered benchmark's gestures (squat, wave, raise arm, clap) between standing idle, "
        "seen by a random camera (heading all around, pitch, distance, framing, mirroring, "
        "speed, keypoint noise, lost joints, empty frames) and written as the rows of the "
        "pose-blazepose encoder: features, target_perframe and data_info.json. The test "
        "split uses camera headings, pitches, playback speeds and two clips that training "
        "never sees (OUT/mocap.json says which). The clips come out of the pybullet wheel "
        "(downloaded with pip) and Debian's assimp-testmodels package (apt-get download or "
        "deb.debian.org), once, into $GAD_CACHE_DIR/mocap. Seeded: same seed, same files.",
    )
    data.add(
        "extract",
        build_extract,
        help="encode videos into per-frame features + targets (the standard OAD layout)",
        description="Decode each annotated video in VIDEOS, sample it at --fps (row t = "
        "time t/fps; a frame per slot, gaps repeat the previous row), encode the frames "
        "in batches, and write DATA/rgb_<encoder>/<video>.npy [frames, D], "
        "DATA/target_perframe/<video>.npy [frames, classes] (Background at 0, then the "
        "actions sorted; overlapping actions give multi-hot rows) and DATA/data_info.json "
        "(with the encoder's description). Annotations: a CSV with video,start_s,end_s,label "
        "(video = file name or stem) or a THUMOS-style folder of <Class>_val.txt / "
        "<Class>_test.txt files ('video start end' lines; _val → train, _test → test). "
        "Resumable: videos already extracted with the same encoder and fps are skipped; "
        "targets are rebuilt from the current annotations. Missing or corrupt videos are "
        "reported in the summary and skipped; the exit code is 0 when any video made it.",
    )


def build_synth(synth: argparse.ArgumentParser) -> None:
    synth.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    synth.add_argument(
        "--procedures",
        action="store_true",
        help="procedures instead: tasks made of ordered steps (make tea: boil water, add tea, "
        "...), with a COIN-style coin.json for `gad train --task clip` besides the per-frame "
        "targets (120 train / 36 test videos at 2 fps by default)",
    )
    synth.add_argument("--train-videos", type=int, default=None, help="default 24 (120)")
    synth.add_argument("--test-videos", type=int, default=None, help="default 8 (36)")
    synth.add_argument(
        "--val-videos",
        type=int,
        default=0,
        help="held-out videos for `gad train --val-data` (a val split, written after the "
        "train and test videos, which stay as they were; default 0)",
    )
    synth.add_argument("--feature-dim", type=int, default=64)
    synth.add_argument("--noise", type=float, default=0.35, help="feature noise std (default 0.35)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(handler=run_synth)


def frame_size(text: str) -> tuple[int, int]:
    """An argparse type: WIDTHxHEIGHT (`--size`, `gad bench gateway --camera-size`)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size must be WIDTHxHEIGHT, e.g. 320x240; got {text!r}"
        ) from None
    return width, height


def build_render(render: argparse.ArgumentParser) -> None:
    render.add_argument("--out", type=Path, required=True, help="folder to write")
    render.add_argument("--videos", type=int, default=48, help="number of videos (default 48)")
    render.add_argument(
        "--seconds", type=float, default=40.0, help="length of each video (default 40)"
    )
    render.add_argument(
        "--size", type=frame_size, default=(320, 240), help="frame WIDTHxHEIGHT (default 320x240)"
    )
    render.add_argument(
        "--fps", type=float, default=10.0, help="frame rate of the files (default 10)"
    )
    render.add_argument(
        "--test-fraction", type=float, default=0.25, help="share of test videos (default 0.25)"
    )
    render.add_argument("--seed", type=int, default=0)
    render.add_argument("--no-progress", action="store_true", help="no progress bar")
    render.set_defaults(handler=run_render)


def build_mocap(mocap: argparse.ArgumentParser) -> None:
    mocap.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    mocap.add_argument("--train-videos", type=int, default=160, help="default 160")
    mocap.add_argument("--test-videos", type=int, default=40, help="default 40")
    mocap.add_argument(
        "--seconds",
        type=float,
        nargs=2,
        default=(60.0, 120.0),
        metavar=("MIN", "MAX"),
        help="length of a video (default 60 120)",
    )
    mocap.add_argument("--fps", type=float, default=4.0, help="feature rows per second (4)")
    mocap.add_argument(
        "--no-holdout-clips",
        action="store_true",
        help="let training see every clip (by default dance_b and getup_faceup are test-only)",
    )
    mocap.add_argument(
        "--no-augment",
        action="store_true",
        help="leave out the training split's augmentations (whole-person dropouts, waist-cut "
        "framing, partial crops); the test split is the same either way",
    )
    mocap.add_argument("--seed", type=int, default=0)
    mocap.add_argument(
        "--wheel", type=Path, default=None, help="a pybullet 3.2.7 wheel on disk (else pip)"
    )
    mocap.add_argument(
        "--deb",
        type=Path,
        default=None,
        help="Debian's assimp-testmodels_5.2.5~ds0-1_all.deb on disk (else downloaded)",
    )
    mocap.add_argument("--no-progress", action="store_true", help="no progress bar")
    mocap.set_defaults(handler=run_mocap)


def build_extract(extract: argparse.ArgumentParser) -> None:
    extract.add_argument("videos", type=Path, help="folder holding the video files")
    extract.add_argument(
        "--annotations",
        type=Path,
        required=True,
        help="CSV file (video,start_s,end_s,label) or THUMOS-style folder of per-class txt",
    )
    extract.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    extract.add_argument(
        "--encoder",
        default="efficientnet-lite0",
        help="frame encoder: efficientnet-lite0 (default) | blazepose (body pose: 40-d "
        "keypoint rows, onnxruntime only) | resnet50:PATH | dinov2:PATH",
    )
    extract.add_argument("--fps", type=float, default=4.0, help="feature rows per second (4)")
    split = extract.add_mutually_exclusive_group()
    split.add_argument(
        "--split",
        type=Path,
        default=None,
        help='JSON {"train": [...], "test": [...]} of video names; only these are extracted',
    )
    split.add_argument(
        "--test-fraction",
        type=float,
        default=0.25,
        help="without --split (and without _val/_test annotation files): share of test "
        "videos, drawn with --seed (default 0.25)",
    )
    extract.add_argument("--seed", type=int, default=0)
    extract.add_argument("--batch-size", type=int, default=16, help="frames per encoder batch")
    extract.add_argument(
        "--runtime",
        choices=["auto", "onnx", "torch"],
        default="auto",
        help="run the encoder in onnxruntime (its cached ONNX export, as the service does) or "
        "PyTorch; auto: onnx on CPU, torch on CUDA (blazepose always runs in onnxruntime)",
    )
    extract.add_argument(
        "--dataset", default=None, help="name in data_info.json (default: the --out folder name)"
    )
    extract.add_argument(
        "--min-seconds", type=float, default=1.0, help="skip shorter videos (default 1)"
    )
    extract.add_argument("--device", default="auto", help="auto | cpu | cuda")
    extract.add_argument("--no-progress", action="store_true", help="no progress bar")
    extract.set_defaults(handler=run_extract)


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")


def run_synth(args: argparse.Namespace) -> int:
    if args.procedures:
        from training.data.procedures import ProcedureConfig as Config
        from training.data.procedures import write_procedure_dataset as write
    else:
        from training.data.synth import SynthConfig as Config
        from training.data.synth import write_synth_dataset as write

    counts = {"videos_train": args.train_videos, "videos_test": args.test_videos}
    if args.val_videos:
        counts["videos_val"] = args.val_videos
    cfg = Config(
        **{k: v for k, v in counts.items() if v is not None},
        feature_dim=args.feature_dim,
        noise=args.noise,
        seed=args.seed,
    )
    summary = write(args.out, cfg)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    return 0


def run_render(args: argparse.Namespace) -> int:
    import time

    from training.data.render import RenderConfig, write_benchmark

    width, height = args.size
    cfg = RenderConfig(
        videos=args.videos,
        seconds=args.seconds,
        fps=args.fps,
        width=width,
        height=height,
        test_fraction=args.test_fraction,
        seed=args.seed,
    )
    start = time.perf_counter()
    summary = write_benchmark(args.out, cfg, progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    _say(
        f"wrote {args.out}: {summary['videos']} videos ({summary['train']} train, "
        f"{summary['test']} test), {summary['seconds']:.0f} s of video, "
        f"{summary['actions']} actions ({summary['per_class']} per class) in {elapsed:.1f} s"
    )
    return 0


def run_mocap(args: argparse.Namespace) -> int:
    import time

    from training.data.mocap import MocapConfig, write_mocap_dataset
    from training.data.mocap_files import ensure_mocap_files

    cfg = MocapConfig(
        videos_train=args.train_videos,
        videos_test=args.test_videos,
        seconds=tuple(args.seconds),
        fps=args.fps,
        holdout_clips=not args.no_holdout_clips,
        augment=not args.no_augment,
        seed=args.seed,
    )
    files = ensure_mocap_files(wheel=args.wheel, deb=args.deb, say=_say)
    start = time.perf_counter()
    summary = write_mocap_dataset(args.out, cfg, files, progress=not args.no_progress)
    elapsed = time.perf_counter() - start
    _say(
        f"wrote {args.out}: "
        + ", ".join(f"{k} {v}" for k, v in summary.items())
        + f" in {elapsed:.1f} s"
    )
    return 0


def run_extract(args: argparse.Namespace) -> int:
    from runtime.errors import ConfigError
    from training.data.extract import ExtractConfig, extract_dataset
    from training.devices import resolve_device

    device = resolve_device(args.device)
    cfg = ExtractConfig(
        videos=args.videos,
        annotations=args.annotations,
        out=args.out,
        encoder=args.encoder,
        fps=args.fps,
        split=args.split,
        test_fraction=args.test_fraction,
        seed=args.seed,
        batch_size=args.batch_size,
        dataset=args.dataset,
        min_seconds=args.min_seconds,
        device=device,
        runtime=args.runtime if args.runtime != "auto" else "onnx" if device == "cpu" else "torch",
        progress=not args.no_progress,
    )
    result = extract_dataset(cfg)
    for line in result.summary():
        _say(line)
    if not result.extracted and not result.reused:
        raise ConfigError(f"no video of {args.videos} could be extracted (see the summary above)")
    return 0
