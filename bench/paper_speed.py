"""`gad bench paper-speed`: the paper's speed claim at the paper's shapes — the GAD [CLS]
head against free generative decoding, one row per task, LoRA merged on both sides.

    OAD   per frame: a window of 128 + 32 rows, one LLM token per row (THUMOS'14's 2048-d
          features). Head: one `class_logits` pass. Decoding: the generative classifier
          decodes a per-frame answer, the THUMOS action of median token length.
    COIN  per clip: 1,200 frames × 10 tokens with "," between frames (the authors' COIN
          input: a frame's SigLIP [CLS] + 3×3 pooled patches, 10 × 1024-d, the 'split'
          layout). Head: one step-question pass (`question_logits`). Decoding: the
          generative clip classifier decodes a step answer of COIN length (COIN_STEPS).

The paper's shape is the Llama-3.2-1B architecture (`llama3.2-1b-random`: random weights,
latency does not depend on their values) in bf16 on CUDA. On a CPU the default is a
reduced shape, labelled "reduced: ..." in the table; `--full` runs the paper's anywhere.

Both sides are the models' own code paths: the head as `merge_head` leaves it (what
head.onnx and the torch backend serve), decoding as `generate` / `generate_clip` run it
after `merge_for_decoding` (every adapter merged, lm_head's included) — free greedy
decoding with a KV cache, the text mapped to the nearest label by edit distance: the
paper's generative baseline, not the label trie (`gad bench engine` and `gad bench clip`
decode constrained). Free decoding on random weights never picks <eos>, so each decode is
capped at the answer's L tokens: L decoder passes after the prefill and L lm_head rows,
where a trained model emitting L tokens and then <eos> runs the same L passes and one
lm_head row more; the cap leans, if anything, towards decoding. The tokens each decode
produced are counted and printed. Head and decoding are timed round-robin in one process
(bench/engine.py's `_interleaved`), batch 1, median of the repeats after a warm-up.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import torch

from bench.engine import DTYPES, THUMOS_CLASSES, _interleaved
from bench.merge import merge_for_decoding, merge_head
from model.backbone import LLAMA32_1B_RANDOM, TINY_LLAMA3, resolve_backbone
from model.clip import STEP, ClipClassifier
from model.config import ModelConfig
from model.gad import GADClassifier
from runtime.system import cpu_name

OAD, COIN = "OAD", "COIN"
TASKS = (OAD, COIN)
HEAD, DECODE = "head", "decode"

# A sample of COIN step names, for the answer's length: only the ones the tree already holds
# (the authors' two reworded labels, model/label_text.py, and the label-text tests'
# examples; COIN's 778-step taxonomy is not in the tree, nor in the authors' release).
COIN_STEPS = (
    "remove the old battery",
    "turn on the TV",
    "process (crop, fold) paper",
    "try to press gun head, spray residual old grease",
)
# COIN task names the tree holds (the task head's size only: decoding answers the step).
COIN_TASKS = ("MakeTea", "ReplaceSIMCard", "AssembleTVStand", "ReplaceCDDriveWithSSD")
COIN_TOKEN_DIM = 1024  # SigLIP-L/16-384: each of a frame's 10 tokens is 1024-d
OAD_FEATURE_DIM = 2048  # THUMOS'14 (the thumos preset)


@dataclass(frozen=True)
class PaperSpeedBench:
    """The shapes run; the defaults are the paper's."""

    backbone: str = LLAMA32_1B_RANDOM
    oad_long: int = 128
    oad_short: int = 32
    coin_frames: int = 1200
    coin_tokens: int = 10
    repeats: int = 10
    device: str = "cpu"
    dtype: str = "float32"
    threads: int | None = None
    tasks: tuple[str, ...] = TASKS

    def reductions(self, task: str) -> list[str]:
        """The paper's value of each part of `task`'s shape that differs here (empty: the
        paper's shape)."""
        paper = PaperSpeedBench()
        out = [] if self.backbone == paper.backbone else [paper.backbone]
        if task == OAD and (self.oad_long, self.oad_short) != (paper.oad_long, paper.oad_short):
            out.append(f"window {paper.oad_long} + {paper.oad_short}")
        if task == COIN and self.coin_frames != paper.coin_frames:
            out.append(f"{paper.coin_frames:,} frames")
        if task == COIN and self.coin_tokens != paper.coin_tokens:
            out.append(f"{paper.coin_tokens} tokens per frame")
        return out


# What a CPU runs by default: the paper's OAD window and COIN's 10 tokens per frame, on a
# 2-layer Llama with the real Llama-3 tokenizer (so answers have the paper's token
# lengths), COIN cut to 120 frames; float32 (CPU bf16 is emulated or slow on most CPUs).
REDUCED = PaperSpeedBench(backbone=TINY_LLAMA3, coin_frames=120, repeats=30)


def default_bench(device: str | None = None, *, full: bool = False) -> PaperSpeedBench:
    """The paper's shapes on CUDA (bf16) or with `full`; the reduced shapes on a CPU."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    base = PaperSpeedBench() if full or cuda else REDUCED
    return replace(base, device=device, dtype="bfloat16" if cuda else "float32")


@dataclass(frozen=True)
class SpeedRow:
    task: str  # OAD | COIN
    reduced: tuple[str, ...]  # the paper's values where the shape run differs (empty: none)
    shape: str
    frame_tokens: int  # LLM tokens the frames take (separators included)
    answer: str  # the decoded answer's label text
    cap: int  # its token count: each decode's length
    decoded: tuple[int, ...]  # tokens each decode produced, warm-up included
    head_ms: float
    decode_ms: float

    @property
    def ratio(self) -> float:
        return self.decode_ms / self.head_ms


def _median_label(token_ids: tuple[tuple[int, ...], ...]) -> int:
    """The index of the first label whose token count is the (lower) median of them all."""
    lengths = [len(ids) for ids in token_ids]
    median = sorted(lengths)[(len(lengths) - 1) // 2]
    return lengths.index(median)


def _capped(model: GADClassifier, cap: int, counts: list[int]) -> None:
    """Make `model`'s free greedy loop stop after `cap` tokens and record, per window, how
    many it produced (an instance attribute shadowing the method; nothing else changes)."""
    decode = model._decode

    def capped(*args: object, **kwargs: object) -> list[list[int]]:
        kwargs["limit"] = cap
        tokens = decode(*args, **kwargs)
        counts.extend(len(t) for t in tokens)
        return tokens

    model._decode = capped  # type: ignore[method-assign]


def _config(bench: PaperSpeedBench, task: str, kind: str) -> ModelConfig:
    if task == OAD:
        return ModelConfig(
            backbone=bench.backbone,
            kind=kind,
            feature_dim=OAD_FEATURE_DIM,
            class_names=THUMOS_CLASSES,
            long_frames=bench.oad_long,
            short_frames=bench.oad_short,
        )
    return ModelConfig(
        backbone=bench.backbone,
        kind=kind,
        feature_dim=bench.coin_tokens * COIN_TOKEN_DIM,
        class_names=COIN_STEPS,
        background_index=None,
        task_names=COIN_TASKS,
        clip_frames=bench.coin_frames,
        tokens_per_frame=bench.coin_tokens,
        frame_tokens="split",
        frame_separator=",",
    )


def _build(bench: PaperSpeedBench, task: str, kind: str) -> GADClassifier:
    config = _config(bench, task, kind)
    backbone = resolve_backbone(bench.backbone, dtype=DTYPES[bench.dtype])
    torch.manual_seed(0)
    cls = ClipClassifier if task == COIN else GADClassifier
    return cls(config, backbone).to(bench.device).eval()


def _run_task(bench: PaperSpeedBench, task: str) -> SpeedRow:
    cuda = bench.device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    head = merge_head(_build(bench, task, "gad"))
    decoder = merge_for_decoding(_build(bench, task, "generative"))
    gen = torch.Generator().manual_seed(0)
    if task == OAD:
        rows, per_row, separator = bench.oad_long + bench.oad_short, 1, 0
        features = torch.randn(1, rows, OAD_FEATURE_DIM, generator=gen).to(bench.device)
        # The actions: a bare " background" would end decoding after one token.
        labels = decoder.prompt.labels[1:]
        head_call: Callable[[], object] = partial(head.class_logits, features)
        decode_call: Callable[[], object] = partial(decoder.generate, features)
        shape = f"window {bench.oad_long} + {bench.oad_short} rows × 1 token"
    else:
        rows = bench.coin_frames
        features = torch.randn(1, rows, bench.coin_tokens * COIN_TOKEN_DIM, generator=gen)
        features = features.to(bench.device)
        mask = torch.ones(1, rows, dtype=torch.long, device=bench.device)
        question = torch.full((1,), STEP, device=bench.device)
        per_row, separator = decoder.connector.per_row, len(decoder.connector.separator)
        labels = decoder.clip_prompt.steps
        head_call = partial(head.question_logits, features, mask, question)
        decode_call = partial(decoder.generate_clip, features, mask, STEP)
        shape = f"{rows:,} frames × {bench.coin_tokens} tokens + ','"
    pick = _median_label(labels)
    cap = len(labels[pick])
    counts: list[int] = []
    _capped(decoder, cap, counts)
    frame_tokens = rows * per_row - separator
    with torch.inference_mode():
        runs = _interleaved({HEAD: head_call, DECODE: decode_call}, bench.repeats, sync)
    reduced = tuple(bench.reductions(task))
    answer = decoder.tokenizer.decode(list(labels[pick]))
    del head, decoder
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return SpeedRow(
        task=task,
        reduced=reduced,
        shape=f"{bench.backbone}, {shape} = {frame_tokens:,} frame tokens",
        frame_tokens=frame_tokens,
        answer=answer,
        cap=cap,
        decoded=tuple(counts),
        head_ms=1e3 * statistics.median(runs[HEAD]),
        decode_ms=1e3 * statistics.median(runs[DECODE]),
    )


def run_paper_speed(bench: PaperSpeedBench) -> list[SpeedRow]:
    """One row per task of `bench.tasks`; each task's two models are freed before the next."""
    if bench.threads:
        torch.set_num_threads(bench.threads)
    return [_run_task(bench, task) for task in bench.tasks]


def _where(bench: PaperSpeedBench) -> str:
    if bench.device.startswith("cuda"):
        return f"CUDA {torch.cuda.get_device_name()}"
    threads = torch.get_num_threads()
    return f"CPU {cpu_name()}, {threads} thread{'s' * (threads != 1)}"


def _decoded(row: SpeedRow) -> str:
    """The tokens each decode produced: the cap when every one reached it."""
    if row.decoded and all(n == row.cap for n in row.decoded):
        return str(row.cap)
    return f"{min(row.decoded, default=0)}–{max(row.decoded, default=0)} of {row.cap}"


def render_paper_speed(rows: list[SpeedRow], bench: PaperSpeedBench) -> str:
    where = _where(bench)
    lines = [
        f"The GAD [CLS] head vs free greedy decoding (KV cache, the paper's generative "
        f"baseline), batch 1, LoRA r=128 α=256 merged on both sides; median of "
        f"{bench.repeats} after a warm-up, head and decoding timed round-robin in one "
        f"process; torch {torch.__version__}.",
        "",
        "| task | shape run | device | dtype | head ms | free decoding ms | tokens decoded | "
        "decoding / head |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        shape = r.shape
        if r.reduced:
            shape = f"reduced: {shape} (paper: {', '.join(r.reduced)})"
        lines.append(
            f"| {r.task} | {shape} | {where} | {bench.dtype} | {r.head_ms:.2f} | "
            f"{r.decode_ms:.2f} | {_decoded(r)} | {r.ratio:.2f}× |"
        )
    answers = "; ".join(f'{r.task} "{r.answer.strip()}" ({r.cap} tokens)' for r in rows)
    lines += [
        "",
        f"Decoded answers (each decode capped at its length: random weights never pick "
        f"<eos>): {answers}. OAD: the THUMOS action of median token length; COIN: the step "
        "of median length in bench/paper_speed.py's COIN_STEPS.",
    ]
    return "\n".join(lines)
