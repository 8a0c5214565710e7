"""The training loop: windows from a feature dataset → a GAD checkpoint.

Device placement, bf16 autocast and multi-GPU data parallelism come from 🤗 Accelerate,
so one command runs on a CPU, a GPU, or N GPUs:

    gad train DATA --out runs/x                          # CPU or one GPU
    accelerate launch --num_processes 4 -m gad train DATA --out runs/x --bf16
    torchrun --nproc-per-node 4 -m gad train DATA --out runs/x --bf16

The epoch order is a seeded permutation sharded across processes, so a resumed run
continues with exactly the batches it would have seen.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from model.backbone import resolve_backbone
from model.checkpoint import load_checkpoint, save_checkpoint
from model.checkpoint_info import CHECKPOINT_DIR
from model.clip import new_classifier
from model.config import FrameTokens, LoraSettings, ModelConfig, TargetRules
from runtime.errors import ConfigError
from training.clips import (
    ClipSamples,
    ClipSource,
    collate_clips,
    load_clip_videos,
    open_clip_source,
)
from training.curves import TRAIN_LOG
from training.data_info import PREVIOUS_RULES, DataInfo, load_data_info
from training.dataset import TrainWindows, load_split
from training.presets import preset
from training.stop_signals import stop_signals_interrupt
from training.validation import Plateau, ValSettings, ValWindows, log_validation

log = logging.getLogger(__name__)

STATE_FILE = "trainer_state.pt"
# With a patience the checkpoint is the best-validated model; where training stands when
# that is not the best (an interrupt, the step budget, a flat stop) is kept beside it as
# RUN/LAST_DIR (the weights and STATE_FILE), which --resume continues from.
LAST_DIR = "last"


@dataclass(frozen=True)
class TrainConfig:
    data: Path
    out: Path
    dataset: str | None = None
    feature_dirs: tuple[str, ...] | None = None
    kind: str = "gad"
    backbone: str = "tiny"
    long_frames: int = 128
    short_frames: int = 32
    long_stride: int = 1
    lm_weight: float = 1.0
    background_weight: float = 1.0
    lora: LoraSettings = field(default_factory=LoraSettings)
    epochs: int = 1
    max_steps: int | None = None
    batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.1
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    bf16: bool = False
    save_every: int = 0  # steps between checkpoints; 0: at the end of each epoch
    log_every: int = 10
    resume: bool = False
    limit_videos: int | None = None
    progress: bool = True
    # "frame": the online model (windows → the last frame's action); "clip": the offline
    # step / task / next-step model over COIN-style annotations (training/clips.py).
    task: str = "frame"
    clip_frames: int = 32
    # The clip model's tokens per row and the text between rows (model/config.py
    # tokens_per_frame, frame_tokens, frame_separator; None: "," when k > 1).
    clip_tokens_per_frame: int = 1
    clip_frame_tokens: FrameTokens = "expand"
    clip_separator: str | None = None
    annotations: Path | None = None
    fps: float | None = None
    # "streaming": each frame read once against the last `stream_window` frames
    # (model/streaming.py), trained on crops of `crop_frames` with every frame supervised.
    attention: str = "window"
    stream_window: int = 0
    crop_frames: int = 256
    # The paper's run this config came from (training/presets.py): its data checks.
    preset: str | None = None
    # The prompt and LM-target layout (model/config.py TargetRules): "authors" (their
    # code's) or "ours" (the layout before issue 29); the three below default to it.
    targets: str = "authors"
    # Class names in the LM text (model/label_text.py); None: "authors" / "normalised".
    label_text: str | None = None
    # GAD's previous action: "first" (the authors' rule), "last" (the most recent) or
    # "none"; None: data_info.json's switch, by the `targets` rule (first / last).
    previous_action: str | None = None
    # Whether " background" ends with <eos>; None: the `targets` rule (authors: no).
    background_eos: bool | None = None
    # Validation loss every `val_every` steps on held-out videos of `val_data`, stopping
    # once it is flat for `patience` validations (training/validation.py); 0: never stop.
    val_data: Path | None = None
    val_every: int = 0
    val_windows: int = 512
    val_split: str | None = None
    patience: int = 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["data"], data["out"] = str(self.data), str(self.out)
        data["annotations"] = None if self.annotations is None else str(self.annotations)
        data["val_data"] = None if self.val_data is None else str(self.val_data)
        return data


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    steps: int
    seconds: float
    last_loss: float
    windows: int
    # With validation: the best validation loss, its step, and whether the run stopped
    # there because the loss had flattened (before its step budget).
    best_val_loss: float | None = None
    best_step: int | None = None
    stopped_flat: bool = False


def resume_point(out: Path) -> tuple[Path, dict[str, Any]] | None:
    """Where --resume continues RUN from: the checkpoint or RUN/last, whichever holds the
    later step, RUN/last on a tie, with that folder's trainer state (read once: it holds
    the optimizer's). None: nothing to resume."""
    best: tuple[Path, dict[str, Any]] | None = None
    for folder in _saved(out):
        state = torch.load(folder / STATE_FILE, weights_only=False)
        if best is None or state["step"] > best[1]["step"]:
            best = (folder, state)
    return best


def resumable(out: Path) -> bool:
    """Whether RUN holds a trainer state to resume (without reading it)."""
    return bool(_saved(out))


def _saved(out: Path) -> list[Path]:
    return [d for d in (out / LAST_DIR, out / CHECKPOINT_DIR) if (d / STATE_FILE).is_file()]


def collate(items: list[tuple[np.ndarray, np.ndarray, int, int]]) -> dict[str, torch.Tensor]:
    return {
        "features": torch.from_numpy(np.stack([i[0] for i in items])),
        "mask": torch.from_numpy(np.stack([i[1] for i in items])).long(),
        "labels": torch.tensor([i[2] for i in items]),
        "previous": torch.tensor([i[3] for i in items]),
    }


@dataclass
class TrainTask:
    """What a task hands the loop: the model config, the samples, how to batch them."""

    config: ModelConfig
    samples: Any  # len, getitem, set_epoch
    collate: Callable[[list], dict[str, torch.Tensor]]
    dataset: str
    fps: float
    encoder: dict[str, Any] | None
    # What the loop optimises, built around the model (default: the model itself).
    objective: Callable[[Any], torch.nn.Module] | None = None


def frame_task(cfg: TrainConfig) -> TrainTask:
    """Windows of a per-frame dataset (data_info.json); label = the last frame's class."""
    info = load_data_info(cfg.data, cfg.dataset, feature_dirs=list(cfg.feature_dirs or []) or None)
    info = _previous_rule(info, cfg)
    videos = load_split(info, "train", limit=cfg.limit_videos)
    if cfg.preset is not None:
        chosen = preset(cfg.preset)
        chosen.check_data(
            feature_dim=int(videos[0].features.shape[1]),
            fps=info.fps,
            feature_dirs_given=cfg.feature_dirs != chosen.feature_dirs,
        )
    model_cfg = ModelConfig(
        **_model_fields(cfg, int(videos[0].features.shape[1])),
        class_names=info.model_class_names,
        background_index=info.model_background_index,
        long_frames=cfg.long_frames,
        short_frames=cfg.short_frames,
        long_stride=cfg.long_stride,
    )
    samples = TrainWindows(videos, info, model_cfg.window, seed=cfg.seed)
    return TrainTask(model_cfg, samples, collate, info.name, info.fps, info.encoder)


def stream_task(cfg: TrainConfig, frames: TrainTask) -> TrainTask:
    """The per-frame task trained with streaming attention: crops, every frame supervised."""
    if cfg.task != "frame":
        raise ConfigError("--attention streaming is for the per-frame task (--task frame)")
    from model.streaming.objective import StreamingObjective
    from training.streaming import StreamCrops, collate_crops

    model_cfg = replace(frames.config, attention="streaming", stream_window=cfg.stream_window)
    windows = frames.samples
    samples = StreamCrops(
        windows.videos,
        windows.info,
        crop=cfg.crop_frames,
        history=cfg.stream_window - 1,
        seed=cfg.seed,
    )
    return replace(
        frames,
        config=model_cfg,
        samples=samples,
        collate=collate_crops,
        objective=StreamingObjective,
    )


def clip_task(cfg: TrainConfig) -> TrainTask:
    """Step, task and next-step clips of a COIN-style dataset, trained jointly."""
    if cfg.task != "clip":
        raise ConfigError(f"task must be 'frame' or 'clip', got {cfg.task!r}")
    source = clip_source(cfg)
    videos = load_clip_videos(source, "train", limit=cfg.limit_videos)
    if cfg.preset is not None:
        preset(cfg.preset).check_data(
            feature_dim=int(videos[0].features.shape[1]),
            fps=source.fps,
            feature_dirs_given=cfg.feature_dirs is not None,
        )
    model_cfg = ModelConfig(
        **_model_fields(cfg, int(videos[0].features.shape[1])),
        class_names=source.annotations.step_names,
        background_index=None,
        task_names=source.annotations.task_names,
        clip_frames=cfg.clip_frames,
        tokens_per_frame=cfg.clip_tokens_per_frame,
        frame_tokens=cfg.clip_frame_tokens,
        frame_separator=cfg.clip_separator,
    )
    samples = ClipSamples(videos, cfg.clip_frames, seed=cfg.seed, jitter=True)
    return TrainTask(model_cfg, samples, collate_clips, source.name, source.fps, source.encoder)


def clip_source(cfg: TrainConfig) -> ClipSource:
    """The clip dataset a training config names (annotations, feature folders, fps)."""
    return open_clip_source(
        cfg.data,
        annotations=cfg.annotations,
        feature_dirs=list(cfg.feature_dirs or []) or None,
        fps=cfg.fps,
        dataset=cfg.dataset,
    )


def _previous_rule(info: DataInfo, cfg: TrainConfig) -> DataInfo:
    """The previous-action switch and rule: the config's, else data_info.json's switch
    with the `targets` style's rule (authors: first occurrence; ours: most recent)."""
    choice = cfg.previous_action
    if choice is None:
        return replace(info, previous_rule="first" if cfg.targets == "authors" else "last")
    if choice not in (*PREVIOUS_RULES, "none"):
        raise ConfigError(f"previous_action must be first, last or none, got {choice!r}")
    if choice == "none":
        return replace(info, previous_action=False)
    return replace(info, previous_action=True, previous_rule=choice)


def _model_fields(cfg: TrainConfig, feature_dim: int) -> dict[str, Any]:
    targets = TargetRules.named(cfg.targets)
    if cfg.background_eos is not None:
        targets = replace(targets, background_eos=cfg.background_eos)
    label_text = cfg.label_text or ("authors" if cfg.targets == "authors" else "normalised")
    return {
        "backbone": cfg.backbone,
        "kind": cfg.kind,
        "feature_dim": feature_dim,
        "lm_weight": cfg.lm_weight,
        "background_weight": cfg.background_weight,
        "lora": cfg.lora,
        "label_text": label_text,
        "targets": targets,
    }


def epoch_batches(
    size: int, *, batch: int, seed: int, epoch: int, rank: int, world: int
) -> list[list[int]]:
    """This process's batches of sample indices for one epoch (seeded, sharded, full)."""
    order = np.random.default_rng([seed, epoch, 7]).permutation(size)
    per_step = batch * world
    usable = len(order) - len(order) % per_step if len(order) >= per_step else len(order)
    mine = order[:usable][rank::world]
    return [mine[i : i + batch].tolist() for i in range(0, len(mine), batch)]


def train(cfg: TrainConfig) -> TrainResult:
    """Train `cfg` into cfg.out; SIGINT or SIGTERM (training/stop_signals.py) stops it
    as Ctrl-C does: where it stands is saved, KeyboardInterrupt raised."""
    with stop_signals_interrupt():
        return _train(cfg)


def _train(cfg: TrainConfig) -> TrainResult:
    accelerator = Accelerator(
        mixed_precision="bf16" if cfg.bf16 else "no",
        cpu=cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available()),
    )
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but torch sees no CUDA device")
    set_seed(cfg.seed)
    task = frame_task(cfg) if cfg.task == "frame" else clip_task(cfg)
    if cfg.attention == "streaming":
        task = stream_task(cfg, task)
    model_cfg, samples, collate_fn = task.config, task.samples, task.collate
    validation = _validation(cfg, task)
    plateau = Plateau(validation.settings) if validation else None
    out = Path(cfg.out)
    ckpt_dir, last_dir = out / CHECKPOINT_DIR, out / LAST_DIR
    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "seconds": 0.0}
    resumed = resume_point(out) if cfg.resume else None
    if resumed is not None:
        start_dir, state = resumed
        model = load_checkpoint(
            start_dir,
            expect_feature_dim=model_cfg.feature_dim,
            expect_class_names=model_cfg.class_names,
        )
        if model.config != model_cfg:
            raise ConfigError(
                f"--resume: {start_dir} was trained with {model.config.to_dict()}, "
                f"these arguments ask for {model_cfg.to_dict()}"
            )
        if plateau is not None:
            plateau.restore(state.get("plateau"))
        log.info("resuming %s at step %d (epoch %d)", start_dir, state["step"], state["epoch"])
    elif cfg.resume:
        raise ConfigError(f"--resume: no {ckpt_dir / STATE_FILE} to resume from")
    elif ckpt_dir.exists():
        raise ConfigError(
            f"{out} already holds a checkpoint: --resume to continue it, or pick another --out"
        )
    else:
        model = new_classifier(model_cfg, resolve_backbone(cfg.backbone))

    world, rank = accelerator.num_processes, accelerator.process_index
    steps_per_epoch = len(
        epoch_batches(
            len(samples), batch=cfg.batch_size, seed=cfg.seed, epoch=0, rank=rank, world=world
        )
    )
    total = cfg.max_steps or cfg.epochs * steps_per_epoch
    if total <= 0:
        raise ConfigError(f"nothing to train: {len(samples)} windows, batch {cfg.batch_size}")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * total), total)
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    objective = task.objective(model) if task.objective is not None else model
    wrapped, optimizer, scheduler = accelerator.prepare(objective, optimizer, scheduler)

    out.mkdir(parents=True, exist_ok=True)
    if accelerator.is_main_process:
        (out / "train_config.json").write_text(
            json.dumps(cfg.to_dict(), indent=2, default=str) + "\n"
        )
    writer = _tensorboard(out) if accelerator.is_main_process else None
    # Where the loop stands; `save` records it so --resume continues from here.
    pos = {
        "step": state["step"],
        "epoch": state["epoch"],
        "batch_in_epoch": state["batch_in_epoch"],
    }
    seconds_before, start = state["seconds"], time.perf_counter()
    last_loss = float("nan")
    bar = tqdm(
        total=total,
        initial=pos["step"],
        disable=not (cfg.progress and accelerator.is_main_process),
        desc=f"train {cfg.kind}",
        unit="step",
        dynamic_ncols=True,
    )

    def save(folder: Path = ckpt_dir, **marks: Any) -> None:
        accelerator.wait_for_everyone()
        if not accelerator.is_main_process:
            return
        seconds = seconds_before + time.perf_counter() - start
        extra = {
            "train": {
                "steps": pos["step"],
                "epochs_done": pos["epoch"],
                "seconds": round(seconds, 1),
                "loss": last_loss,
                "windows_per_epoch": len(samples),
                "dataset": task.dataset,
                "data": str(cfg.data),
                "task": cfg.task,
            },
            # What serving needs to turn frames into rows the way training saw them.
            "data": {"fps": task.fps, "encoder": task.encoder},
        }
        save_checkpoint(model, folder, extra=extra)
        torch.save(
            {
                **pos,
                "seconds": seconds,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "plateau": None if plateau is None else plateau.state(),
                "rng": _rng_state(),
                **marks,
            },
            folder / STATE_FILE,
        )

    # With a patience the checkpoint is the best-validated model: it is saved when the
    # validation loss improves, and at no other time; the position goes to RUN/last.
    keep_best = plateau is not None and plateau.settings.patience > 0
    position = last_dir if keep_best else ckpt_dir
    saved_best = None if plateau is None else plateau.best_step

    if "rng" in state:  # LoRA dropout's masks go on as they would have
        _restore_rng(state["rng"])
    try:
        wrapped.train()
        # --resume of a run that stopped flat trains on only under a larger patience (from
        # where it stopped: what it would have done had it had that patience from the start).
        flat_at = state.get("stopped_flat")  # the patience it stopped with
        stopped = flat_at is not None and keep_best and flat_at >= plateau.settings.patience
        while pos["step"] < total and not stopped:
            samples.set_epoch(pos["epoch"])
            batches = epoch_batches(
                len(samples),
                batch=cfg.batch_size,
                seed=cfg.seed,
                epoch=pos["epoch"],
                rank=rank,
                world=world,
            )
            for indices in batches[pos["batch_in_epoch"] :]:
                tick = time.perf_counter()
                batch = {
                    k: v.to(accelerator.device)
                    for k, v in collate_fn([samples[i] for i in indices]).items()
                }
                output = wrapped(**batch)
                accelerator.backward(output.loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                pos["step"] += 1
                pos["batch_in_epoch"] += 1
                last_loss = output.loss.item()
                rate = len(indices) * world / (time.perf_counter() - tick)
                bar.update(1)
                bar.set_postfix(
                    loss=f"{last_loss:.4f}",
                    lr=f"{scheduler.get_last_lr()[0]:.2e}",
                    win_s=f"{rate:.0f}",
                )
                step = pos["step"]
                if accelerator.is_main_process and (step % cfg.log_every == 0 or step == total):
                    _log(
                        out,
                        writer,
                        step=step,
                        epoch=pos["epoch"],
                        output=output,
                        lr=scheduler.get_last_lr()[0],
                        rate=rate,
                        elapsed=seconds_before + time.perf_counter() - start,
                    )
                if validation and (step % cfg.val_every == 0 or step == total):
                    losses = validation.losses(
                        wrapped, collate_fn, accelerator.device, cfg.batch_size
                    )
                    improved = plateau.update(step, losses["val_loss"])
                    log_validation(out, {"step": step, **losses, **plateau.state()})
                    if improved and keep_best:
                        save()
                        saved_best = step
                    if plateau.flat:
                        log.info("validation loss flat since step %d: stopping", plateau.best_step)
                        stopped = True
                        break
                if cfg.save_every and step % cfg.save_every == 0:
                    save(position)
                if step >= total:
                    break
            else:  # the epoch ran out
                pos["epoch"] += 1
                pos["batch_in_epoch"] = 0
                if not cfg.save_every and pos["step"] < total:
                    save(position)
    except KeyboardInterrupt:
        bar.close()
        log.warning("interrupted at step %d: saving %s", pos["step"], position)
        save(position)
        if keep_best and plateau.best_step == pos["step"] != saved_best:
            save()  # interrupted between a new best validation and its save
        raise
    bar.close()
    if pos["step"] > state["step"]:
        # A stop on a flat loss is recorded, so that --resume does not train on from there.
        save(position, **({"stopped_flat": plateau.settings.patience} if stopped else {}))
    else:  # --resume of a finished run: nothing trained, its checkpoint stays as it was
        log.info("%s already ran its %d steps: nothing to train", ckpt_dir, pos["step"])
    if writer is not None:
        writer.close()
    return TrainResult(
        ckpt_dir,
        pos["step"],
        seconds_before + time.perf_counter() - start,
        last_loss,
        len(samples),
        best_val_loss=None if plateau is None else plateau.best,
        best_step=None if plateau is None else plateau.best_step,
        stopped_flat=stopped,
    )


def _validation(cfg: TrainConfig, task: TrainTask) -> ValWindows | None:
    """The validation windows and settings a config asks for (--val-data), else None."""
    if cfg.val_data is None:
        if cfg.val_every or cfg.patience:
            raise ConfigError("--val-every / --patience need --val-data (held-out videos)")
        return None
    if cfg.attention != "window":
        raise ConfigError("--val-data: validation is for models with window attention")
    if cfg.val_every <= 0:
        raise ConfigError("--val-data needs --val-every N (steps between validations)")
    settings = ValSettings(
        cfg.val_data, cfg.val_every, cfg.val_windows, cfg.patience, split=cfg.val_split
    )
    if cfg.task == "clip":
        return ValWindows.clips(
            settings,
            step_names=task.config.class_names,
            task_names=task.config.task_names,
            max_frames=cfg.clip_frames,
            seed=cfg.seed,
        )
    return ValWindows.frames(
        settings,
        class_names=task.config.class_names,
        spec=task.config.window,
        like=task.samples.info,
        seed=cfg.seed,
    )


def _rng_state() -> dict[str, Any]:
    """torch's generators (CPU, and each CUDA device's), saved with the trainer state so
    that a resumed run draws the dropout masks the uninterrupted one would have."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def _restore_rng(saved: dict[str, Any]) -> None:
    torch.set_rng_state(saved["torch"])
    if saved["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda"])


def _tensorboard(out: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard not installed: JSONL only
        return None
    return SummaryWriter(str(out / "tensorboard"))


def _log(
    out: Path,
    writer: Any,
    *,
    step: int,
    epoch: int,
    output: Any,
    lr: float,
    rate: float,
    elapsed: float,
) -> None:
    record = {
        "step": step,
        "epoch": epoch,
        "loss": output.loss.item(),
        "lr": lr,
        "windows_per_s": round(rate, 1),
        "elapsed_s": round(elapsed, 2),
    }
    for key in ("cls_loss", "lm_loss"):
        value = getattr(output, key)
        if value is not None:
            record[key] = value.item()
    with (out / TRAIN_LOG).open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    if writer is not None:
        for key, value in record.items():
            if key not in ("step", "epoch"):
                writer.add_scalar(f"train/{key}", value, step)
