"""`gad data synth`, `gad train`, `gad eval`, `gad bench compare`.

    gad data synth --out data/synth
    gad train data/synth --out runs/gad --kind gad --backbone tiny --epochs 8
    gad eval runs/gad --data data/synth --save-scores runs/gad/scores.npz
    gad bench compare --data data/synth --backbone tiny --out docs/benchmarks/compare-tiny.md
    gad data synth --procedures --out data/procedures
    gad train data/procedures --task clip --out runs/clip
    gad eval runs/clip --data data/procedures

Torch is imported only inside the handlers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from model.config import CLASSIFIER_KINDS, LLAMA_LORA_TARGETS


def register(
    commands: argparse._SubParsersAction, groups: dict[str, argparse._SubParsersAction]
) -> None:
    synth = groups["data"].add_parser(
        "synth",
        help="write the synthetic OAD benchmark in the standard feature layout",
        description="Untrimmed videos of verb+object actions (open/close drawer, ...) whose "
        "frames only make sense in their window; features, target_perframe and "
        "data_info.json as THUMOS-style loaders expect. Seeded: same seed, same files.",
    )
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
    synth.add_argument("--feature-dim", type=int, default=64)
    synth.add_argument("--noise", type=float, default=0.35, help="feature noise std (default 0.35)")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(handler=run_synth)

    train = commands.add_parser(
        "train",
        help="train a generative, discriminative or GAD classifier on a feature dataset",
        description="Train on DATA (a folder with data_info.json; with --task clip, "
        "COIN-style annotations in DATA/coin.json or --annotations). Writes OUT/checkpoint "
        "(see `gad info`), OUT/log.jsonl (and OUT/tensorboard when tensorboard is installed). "
        "Ctrl-C saves a checkpoint; --resume continues it. Multi-GPU: "
        "`accelerate launch -m gad train ...` or `torchrun --nproc-per-node N -m gad train ...`.",
    )
    train.add_argument("data", type=Path, help="dataset folder holding data_info.json")
    train.add_argument("--out", type=Path, required=True, help="run folder")
    add_train_arguments(train)
    train.set_defaults(handler=run_train)

    evaluate = commands.add_parser(
        "eval",
        help="score every frame of the test videos (mAP, mcAP, accuracy, segment F1, plots); "
        "clip models: top-1 / top-5 for step, task and next step",
        description="Evaluate a checkpoint (or a run folder holding checkpoint/) on DATA's "
        "test split at stride 1. Writes metrics.json, metrics.md, a confusion matrix and "
        "per-video timelines to --report (default: RUN/eval). --from-scores recomputes the "
        "report from a saved scores file without the model.",
    )
    evaluate.add_argument("checkpoint", type=Path, nargs="?", help="checkpoint or run folder")
    evaluate.add_argument("--data", type=Path, required=True)
    evaluate.add_argument("--dataset", default=None, help="name in data_info.json")
    evaluate.add_argument("--split", choices=["train", "test"], default="test")
    evaluate.add_argument("--batch-size", type=int, default=64)
    evaluate.add_argument("--device", default="auto", help="auto | cpu | cuda")
    evaluate.add_argument("--limit-videos", type=int, default=None)
    evaluate.add_argument("--save-scores", type=Path, default=None, help="write scores .npz here")
    evaluate.add_argument(
        "--from-scores", type=Path, default=None, help="report from a scores .npz"
    )
    evaluate.add_argument("--report", type=Path, default=None, help="report folder")
    evaluate.add_argument("--plots", type=int, default=4, help="timelines for the first N videos")
    evaluate.add_argument(
        "--annotations", type=Path, default=None, help="clip models: default DATA/coin.json"
    )
    evaluate.add_argument("--fps", type=float, default=None, help="clip models: feature fps")
    evaluate.add_argument(
        "--free-decoding",
        action="store_true",
        help="generative: decode freely and map to the nearest label",
    )
    evaluate.set_defaults(handler=run_eval)

    compare = groups["bench"].add_parser(
        "compare",
        help="train + evaluate generative, discriminative and GAD side by side",
        description="Same data, backbone, seed and schedule for each classifier kind; one "
        "Markdown table of mAP, accuracy, training time and per-frame latency.",
    )
    compare.add_argument("--data", type=Path, required=True)
    compare.add_argument("--runs", type=Path, default=Path("runs/compare"), help="run folders")
    compare.add_argument("--out", type=Path, default=None, help="also write the table here")
    compare.add_argument("--kinds", default=",".join(CLASSIFIER_KINDS))
    compare.add_argument("--limit-test-videos", type=int, default=None)
    add_train_arguments(compare)
    compare.set_defaults(handler=run_compare_cmd)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--task",
        choices=["frame", "clip"],
        default="frame",
        help="frame: the online model (each frame's action from its window; default); "
        "clip: the offline model over COIN-style annotations — step, task and next-step "
        "recognition trained jointly, two heads on one [CLS]",
    )
    parser.add_argument(
        "--clip-frames",
        type=int,
        default=32,
        help="clip task: longer clips are uniformly subsampled to this many rows (default 32)",
    )
    parser.add_argument(
        "--annotations",
        type=Path,
        default=None,
        help="clip task: COIN-style JSON (default DATA/coin.json)",
    )
    parser.add_argument(
        "--fps", type=float, default=None, help="clip task: feature fps (default: data_info.json)"
    )
    parser.add_argument("--dataset", default=None, help="name in data_info.json (if several)")
    parser.add_argument(
        "--feature-dirs",
        default=None,
        help="comma-separated feature folders, concatenated (e.g. "
        "rgb_kinetics_resnet50,flow_kinetics_bninception)",
    )
    parser.add_argument("--kind", choices=CLASSIFIER_KINDS, default="gad")
    parser.add_argument(
        "--backbone",
        default="tiny",
        help="tiny | tiny-llama3 | smollm2-135m | PATH to a HF Llama folder",
    )
    parser.add_argument("--long", type=int, default=128, help="long-memory frames (default 128)")
    parser.add_argument("--short", type=int, default=32, help="short-window frames (default 32)")
    parser.add_argument("--long-stride", type=int, default=1)
    parser.add_argument("--lm-weight", type=float, default=1.0, help="λ for the LM loss")
    parser.add_argument(
        "--background-weight",
        type=float,
        default=1.0,
        help="CE weight of background windows (THUMOS 1.0, EK100 0.5, CrossTask 0.2)",
    )
    parser.add_argument("--lora-rank", type=int, default=128, help="0 freezes the backbone")
    parser.add_argument("--lora-alpha", type=int, default=256)
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument("--lora-targets", default=",".join(LLAMA_LORA_TARGETS))
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None, help="stop after N steps")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--warmup", type=float, default=0.1, help="warm-up share of the steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--bf16", action="store_true", help="bf16 autocast (GPU)")
    parser.add_argument("--save-every", type=int, default=0, help="checkpoint every N steps")
    parser.add_argument("--resume", action="store_true", help="continue OUT/checkpoint")
    parser.add_argument("--limit-videos", type=int, default=None, help="first N train videos")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def train_config(args: argparse.Namespace, out: Path):
    from model.config import LoraSettings
    from training.train import TrainConfig

    return TrainConfig(
        data=args.data, out=out, dataset=args.dataset,
        feature_dirs=tuple(args.feature_dirs.split(",")) if args.feature_dirs else None,
        kind=args.kind, backbone=args.backbone, long_frames=args.long, short_frames=args.short,
        long_stride=args.long_stride, lm_weight=args.lm_weight,
        background_weight=args.background_weight,
        lora=LoraSettings(rank=args.lora_rank, alpha=args.lora_alpha, dropout=args.lora_dropout,
                          target_modules=tuple(args.lora_targets.split(","))),
        epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, lr=args.lr,
        weight_decay=args.weight_decay, warmup_ratio=args.warmup, seed=args.seed,
        device=args.device, bf16=args.bf16, save_every=args.save_every, resume=args.resume,
        limit_videos=args.limit_videos, progress=not args.no_progress, task=args.task,
        clip_frames=args.clip_frames, annotations=args.annotations, fps=args.fps,
    )  # fmt: skip


def run_synth(args: argparse.Namespace) -> int:
    if args.procedures:
        from training.data.procedures import ProcedureConfig as Config
        from training.data.procedures import write_procedure_dataset as write
    else:
        from training.data.synth import SynthConfig as Config
        from training.data.synth import write_synth_dataset as write

    counts = {"videos_train": args.train_videos, "videos_test": args.test_videos}
    cfg = Config(
        **{k: v for k, v in counts.items() if v is not None},
        feature_dim=args.feature_dim,
        noise=args.noise,
        seed=args.seed,
    )
    summary = write(args.out, cfg)
    print(f"wrote {args.out}: " + ", ".join(f"{k} {v}" for k, v in summary.items()))
    return 0


def run_train(args: argparse.Namespace) -> int:
    from training.train import train

    result = train(train_config(args, args.out))
    print(
        f"checkpoint {result.checkpoint}: {result.steps} steps in {result.seconds:.1f} s, "
        f"last loss {result.last_loss:.4f} ({result.windows} windows per epoch)"
    )
    return 0


def run_eval(args: argparse.Namespace) -> int:

    from model.checkpoint_info import read_checkpoint_info, resolve_checkpoint
    from runtime.errors import ConfigError
    from training.data_info import load_data_info
    from training.evaluate import (
        compute_metrics,
        load_scores,
        pooled_labels,
        predict,
        save_scores,
        write_metrics,
    )
    from training.reports import metrics_markdown, plot_confusion, plot_timeline

    ckpt = None if args.checkpoint is None else resolve_checkpoint(args.checkpoint)
    if ckpt is not None and not args.from_scores and read_checkpoint_info(ckpt).config.is_clip:
        return run_clip_eval(args, ckpt)
    info = load_data_info(args.data, args.dataset)
    if args.from_scores:
        results, names = load_scores(args.from_scores)
        if tuple(names) != info.class_names:
            raise ConfigError(
                f"{args.from_scores} has classes {names}, data has {info.class_names}"
            )
        title = args.from_scores.stem
        report = args.report or args.from_scores.parent / "eval"
    else:
        if ckpt is None:
            raise ConfigError("give a checkpoint (or run folder), or --from-scores FILE")
        from model.checkpoint import load_checkpoint
        from training.dataset import load_split

        videos = load_split(info, args.split, limit=args.limit_videos)
        model = load_checkpoint(
            ckpt,
            expect_feature_dim=int(videos[0].features.shape[1]),
            expect_class_names=info.model_class_names,
        )
        results = predict(
            model,
            videos,
            info,
            batch_size=args.batch_size,
            device=_device(args.device),
            constrained=not args.free_decoding,
        )
        title = f"{model.config.kind} on {model.config.backbone}"
        report = args.report or ckpt.parent / "eval"
        if args.save_scores:
            save_scores(args.save_scores, results, info)
    metrics = compute_metrics(results, info)
    write_metrics(report, metrics)
    markdown = metrics_markdown(metrics, title=f"{info.name} {args.split}: {title}")
    (report / "metrics.md").write_text(markdown + "\n")
    truth, predicted = pooled_labels(results, info)
    plot_confusion(
        report / "confusion.png",
        true_labels=truth,
        pred_labels=predicted,
        class_names=list(info.class_names),
        title=title,
    )
    for r in results[: args.plots]:
        plot_timeline(
            report / f"timeline_{r.session}.png",
            target=r.targets.argmax(1),
            pred=r.scores.argmax(1),
            class_names=list(info.class_names),
            fps=info.fps,
            title=f"{r.session}: {title}",
            background_index=info.background_index,
        )
    print(markdown)
    print(f"\nreport: {report}" + (f"; scores: {args.save_scores}" if args.save_scores else ""))
    return 0


def _device(arg: str) -> str:
    """--device: auto → cuda when torch sees a GPU, else cpu."""
    import torch

    return arg if arg != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")


def run_clip_eval(args: argparse.Namespace, ckpt: Path) -> int:
    """`gad eval` of a clip model: top-1 / top-5 per task on the split's clips."""
    from model.checkpoint import load_checkpoint
    from training.clip_eval import clip_metrics, clip_metrics_markdown, predict_clips
    from training.clips import load_clip_videos, open_clip_source
    from training.evaluate import write_metrics

    source = open_clip_source(
        args.data, annotations=args.annotations, fps=args.fps, dataset=args.dataset
    )
    videos = load_clip_videos(source, args.split, limit=args.limit_videos)
    model = load_checkpoint(ckpt, expect_feature_dim=int(videos[0].features.shape[1]))
    if model.config.task_names != source.annotations.task_names:
        from runtime.errors import ConfigError

        raise ConfigError(
            f"{ckpt} was trained on tasks {list(model.config.task_names)}, "
            f"{source.annotations.path} has {list(source.annotations.task_names)}"
        )
    results = predict_clips(
        model,
        videos,
        batch_size=args.batch_size,
        device=_device(args.device),
        constrained=not args.free_decoding,
    )
    metrics = clip_metrics(results, generative=model.config.kind == "generative")
    report = args.report or ckpt.parent / "eval"
    write_metrics(report, metrics)
    title = f"{source.name} {args.split}: {model.config.kind} on {model.config.backbone}"
    markdown = clip_metrics_markdown(metrics, title=title)
    (report / "metrics.md").write_text(markdown + "\n")
    print(markdown)
    print(f"\nreport: {report}")
    return 0


def run_compare_cmd(args: argparse.Namespace) -> int:
    from training.compare import (
        render_clip_compare,
        render_compare,
        run_clip_compare,
        run_compare,
    )

    base = train_config(args, args.runs)
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    extra = {"test videos": args.limit_test_videos or "all"}
    if base.task == "clip":
        rows = run_clip_compare(
            base, kinds, limit_test=args.limit_test_videos, progress=base.progress
        )
        table = render_clip_compare(rows, base, extra)
    else:
        rows = run_compare(base, kinds, limit_test=args.limit_test_videos, progress=base.progress)
        table = render_compare(rows, base, extra)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(table + "\n")
    (args.runs / "compare.md").write_text(table + "\n")
    print(json.dumps({"runs": str(args.runs)}))
    return 0
