"""Teach a served model new actions from a few examples: a new package version in minutes.

    teach(examples, base, out) -> TeachResult
    gad teach train --examples DATA/open/demo-pose --base models/demo-pose --out models/demo-pose

The recipe (issue 27, docs/teach.md):
- classes: the base package's, in their order, then the new labels the examples hold
  (sorted); a label the base already has is trained as that class.
- data: the user's examples (the standard feature layout, service/examples/store.py: one
  example per session, per-row labels) split into train and held out *by example*: per new
  label with at least 2 examples, a quarter of them (at least one) held out; a label with
  one example is trained on it alone and says so. The built-in motion-capture data the base
  was trained on (its manifest's `training.data`, else `mocap`) stays in every batch
  (`examples_share` of a batch is examples, the rest mocap windows), so the old classes are
  not forgotten.
- augmentation: what the mocap recipe does that applies to rows (training/data/mocap.py,
  camera.py: TRAIN_RANGES): playback speed, mirroring (x negated, left and right swapped),
  keypoint noise, lost joints, a waist cut (knees and ankles unsure), whole-person
  dropouts. Drawn anew for every window; half the example windows are preceded by a random
  stretch of a mocap video, so the new action is seen after other motion as in a stream.
- weights: the base's checkpoint (its run's, or the `checkpoint/` a taught version keeps),
  checked to be the one head.onnx was exported from; the head grows a row per new class
  (new rows drawn at the old rows' scale, biases at their mean), everything else as it was;
  fine-tuned for `budget.steps` batches or `budget.seconds`, whichever comes first (the
  cosine schedule follows whichever is further along).
- checks: the held-out examples' frame accuracy per class and the held-out mocap split's
  mAP of the old classes, before (base package) → after (new package), both with the
  packages' own ONNX graphs, as served.
- output: `out/N+1/` through `gad export`'s code path (training/export.py: head.onnx
  verified against PyTorch on real rows, the encoder's graphs, sha256 per file), the
  held-out metrics in the manifest's `metrics` and a `teach` section (base, classes,
  examples used and held out, accuracies, mAP before → after, budget, time); the
  temperature fitted on the held-out frames (floored at the base's floor) when the base was
  calibrated; the fine-tuned checkpoint kept as `out/N+1/checkpoint/` so the new version
  can be a base in turn. Written beside `out` and renamed into place whole: a watcher of
  `out` never sees half a version.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from model.backbone import resolve_backbone
from model.checkpoint import load_checkpoint, save_checkpoint
from model.checkpoint_info import BACKBONE_DIR, CHECKPOINT_DIR, read_checkpoint_info
from model.clip import new_classifier
from model.export.graph import DEFAULT_TOLERANCE
from model.gad import GADClassifier
from runtime.calibration import calibrate, softmax
from runtime.engine import OnnxEngine
from runtime.errors import ConfigError
from runtime.manifest import MANIFEST_FILE, Manifest, ModelPackage, read_package
from runtime.pose_features import FEATURE_DIM, MIRROR_INDEX, NUM_JOINTS
from runtime.windowing import build_window, build_windows
from training.calibration import package_logits, section
from training.data.camera import TORSO_METRES
from training.data.mocap import TRAIN_RANGES
from training.data_info import DataInfo, load_data_info
from training.dataset import FeatureVideo, TrainWindows, load_split, load_video
from training.export import export_run
from training.metrics import per_frame_ap
from training.train import collate

EXAMPLES_DATASET = "examples"  # the examples store's entry in data_info.json
HELD_OUT_SHARE = 0.25  # of a new label's examples, when it has 2 or more
KEPT_CHECKPOINT = CHECKPOINT_DIR  # the fine-tuned weights, kept in the new version folder
Progress = Callable[[str, float, dict[str, Any]], None]


@dataclass(frozen=True)
class TeachBudget:
    """How much fine-tuning: `steps` batches of `batch_size` windows, or `seconds` of
    training if that comes first; `examples_share` of each batch is the user's examples."""

    steps: int = 600
    seconds: float | None = 90.0  # the training's time cap: a loaded machine stops early
    batch_size: int = 32
    lr: float = 1e-3
    warmup: float = 0.05
    examples_share: float = 0.25
    seed: int = 0
    mocap_videos: int | None = None  # the mix's first N mocap training videos (None: all)
    eval_videos: int | None = None  # held-out mocap videos for the old classes (None: all)
    augment: bool = True

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 2:
            raise ConfigError("the budget needs steps >= 1 and batch_size >= 2")
        if not 0 < self.examples_share < 1:
            raise ConfigError(f"examples_share must lie in (0, 1), got {self.examples_share}")
        if self.seconds is not None and self.seconds <= 0:
            raise ConfigError(f"seconds must be positive, got {self.seconds}")


@dataclass(frozen=True)
class TeachResult:
    folder: Path  # out/N+1
    name: str
    version: str
    base: str  # "name/version" of the base package
    classes: tuple[str, ...]
    new_classes: tuple[str, ...]
    examples: dict[str, Any]  # used, train and held-out ids, per label counts
    held_out_accuracy: dict[str, float | None]  # per class of the examples: frame accuracy
    old_map: dict[str, float]  # {"before", "after"}: the old classes on held-out mocap
    steps: int
    seconds: dict[str, float]  # per stage and "total"
    notes: tuple[str, ...] = ()
    calibration: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["folder"] = str(self.folder)
        data["classes"], data["new_classes"] = list(self.classes), list(self.new_classes)
        data["notes"] = list(self.notes)
        return data


# --- the parts --------------------------------------------------------------------------


@dataclass
class Examples:
    """The user's examples as videos in the new class space, split by example."""

    info: DataInfo
    train: list[FeatureVideo]
    held_out: list[FeatureVideo]
    labels: dict[str, list[str]]  # example id -> its labels (new class names)
    notes: list[str] = field(default_factory=list)


def next_version(out: Path, base: str = "0") -> str:
    """One more than the largest numeric version folder in `out` and the base's version: a
    tenant's first version taught from the shared version 1 is 2 (service/tenants.py)."""
    numbers = [int(p.name) for p in Path(out).glob("*") if p.is_dir() and p.name.isdigit()]
    if base.isdigit():
        numbers.append(int(base))
    return str(max(numbers, default=0) + 1)


def base_checkpoint(package: ModelPackage, given: Path | None = None) -> Path:
    """The checkpoint `package` was exported from: the version folder's own `checkpoint/`
    (a taught version keeps it), else `given`, else the run beside its package root
    (ROOT/models/NAME/N → ROOT/run/checkpoint, as `gad demo build` and `gad export` of a
    run lay them out). `given` is for a base that keeps none, whose run is elsewhere (a
    trainer container: `gad worker -- --base-checkpoint …`); a chain of taught versions
    still starts each from its own. Each candidate must have the package's classes, window,
    feature size and backbone; the first that does is returned (its logits are checked
    later)."""
    folder = package.folder.resolve()
    run = Path(given) if given is not None else folder.parents[2] / "run" / CHECKPOINT_DIR
    candidates = [folder / KEPT_CHECKPOINT, run]
    reasons = []
    for path in candidates:
        if not (path / "checkpoint.json").is_file():
            reasons.append(f"{path}: no checkpoint")
            continue
        info = read_checkpoint_info(path)
        cfg = info.config
        fingerprint = (package.info.backbone or {}).get("fingerprint")
        if tuple(cfg.class_names) != package.classes:
            reasons.append(f"{path}: classes {list(cfg.class_names)}")
        elif cfg.feature_dim != package.feature_dim or cfg.window != package.window:
            reasons.append(f"{path}: another window or feature size")
        elif fingerprint and info.backbone.get("fingerprint") != fingerprint:
            reasons.append(f"{path}: another backbone")
        else:
            return path
    raise ConfigError(
        f"cannot find the PyTorch weights of {package.folder} (a package holds ONNX graphs "
        f"only): {'; '.join(reasons)}. Pass the run's checkpoint (--base-checkpoint)"
    )


def check_same_weights(model: GADClassifier, package: ModelPackage, rows: np.ndarray) -> float:
    """Max |PyTorch - head.onnx| logits on windows of `rows`; ConfigError above tolerance
    (the checkpoint is not the one the package was exported from)."""
    spec = package.window
    frames = np.linspace(0, len(rows) - 1, 6).astype(int)
    windows, mask = build_windows(np.asarray(rows, np.float32), frames, spec)
    with torch.no_grad():
        torch_logits = model.class_logits(torch.from_numpy(windows), torch.from_numpy(mask).long())
    engine = OnnxEngine.load(package, providers=("cpu",))
    diff = float(np.abs(engine.logits(windows, mask) - torch_logits.numpy()).max())
    if diff > DEFAULT_TOLERANCE * 10:
        raise ConfigError(
            f"the checkpoint found for {package.folder} gives logits {diff:.3g} away from its "
            "head.onnx: it is not the one the package was exported from (--base-checkpoint)"
        )
    return diff


def grow(base: GADClassifier, classes: tuple[str, ...], spec: str, seed: int) -> GADClassifier:
    """A classifier with `classes` (the base's, then new ones) carrying the base's weights:
    every tensor as it was, the head's rows for the old classes kept and new rows drawn at
    their scale (bias: the old biases' mean)."""
    old = base.config.class_names
    if tuple(classes[: len(old)]) != tuple(old):
        raise ConfigError(f"the new classes must start with the base's {list(old)}")
    config = replace(base.config, class_names=tuple(classes))
    backbone = resolve_backbone(spec)
    backbone.spec = base.backbone.spec
    grown = new_classifier(config, backbone)
    assert isinstance(grown, GADClassifier) and base.head is not None and grown.head is not None
    state = base.state_dict()
    weight, bias = state["head.proj.weight"], state["head.proj.bias"]
    gen = torch.Generator().manual_seed(seed)
    extra = len(classes) - len(old)
    state["head.proj.weight"] = torch.cat(
        [weight, torch.randn(extra, weight.shape[1], generator=gen) * weight.std()]
    )
    state["head.proj.bias"] = torch.cat([bias, bias.mean().repeat(extra)])
    missing, unexpected = grown.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.startswith("lm.")]:
        raise ConfigError(f"the base's weights do not fit: {unexpected[:4]} {missing[:4]}")
    return grown


def load_examples(
    root: Path, base_classes: tuple[str, ...], background: str, *, seed: int
) -> tuple[Examples, tuple[str, ...]]:
    """The examples at `root` in the class space base classes + new labels, split by
    example; returns them and the new class list."""
    path = Path(root) / "data_info.json"
    if not path.is_file():
        raise ConfigError(f"{root} holds no examples (no data_info.json): add some first")
    names = json.loads(path.read_text())
    info = load_data_info(Path(root), EXAMPLES_DATASET if EXAMPLES_DATASET in names else None)
    sessions = list(dict.fromkeys([*info.train_sessions, *info.test_sessions]))
    if not sessions:
        raise ConfigError(f"{root} holds no examples: add some first")
    data_bg = None if info.background_index is None else info.class_names[info.background_index]
    known = {name.lower(): name for name in base_classes}
    mapping: dict[int, int] = {}
    new: list[str] = []
    for i, name in enumerate(info.class_names):
        if i == info.ignore_index:
            continue
        target = background if name == data_bg else known.get(name.lower(), name)
        if target not in base_classes and target not in new:
            new.append(target)
    classes = (*base_classes, *sorted(new))
    index = {name: i for i, name in enumerate(classes)}
    for i, name in enumerate(info.class_names):
        if i != info.ignore_index:
            mapping[i] = index[background if name == data_bg else known.get(name.lower(), name)]
    videos = []
    for session in sessions:
        video = load_video(info, session)
        keep = (
            np.ones(len(video), bool)
            if info.ignore_index is None
            else video.labels != info.ignore_index
        )
        labels = np.array([mapping.get(int(y), -1) for y in video.labels], np.int64)
        labels[~keep] = -1  # ignored rows: never a target, never scored
        videos.append(
            FeatureVideo(session, np.asarray(video.features, np.float32), np.zeros((0,)), labels)
        )
    labels_of = {
        v.session: sorted({classes[y] for y in v.labels if y >= 0} - {background}) for v in videos
    }
    held, notes = _hold_out(labels_of, set(new), seed)
    examples = Examples(
        info=info,
        train=[v for v in videos if v.session not in held],
        held_out=[v for v in videos if v.session in held],
        labels=labels_of,
        notes=notes,
    )
    if not examples.train:
        raise ConfigError("no example is left to train on")
    return examples, classes


def _hold_out(
    labels_of: dict[str, list[str]], new: set[str], seed: int
) -> tuple[set[str], list[str]]:
    """Example ids held out: per new label with >= 2 examples, a quarter (at least one),
    never its last training example nor another label's."""
    rng = np.random.default_rng([seed, 27])
    held: set[str] = set()
    notes = []
    for label in sorted(new):
        having = [s for s, labels in labels_of.items() if label in labels]
        if len(having) < 2:
            notes.append(
                f"{label!r}: {len(having)} example: trained on it, none held out (its "
                "accuracy is not measured; add another example)"
            )
            continue
        wanted = max(1, int(len(having) * HELD_OUT_SHARE)) - len(held.intersection(having))
        for session in rng.permutation(having):
            if wanted <= 0:
                break
            if session in held:
                continue
            trial = held | {str(session)}
            if all(
                any(s not in trial for s, labels in labels_of.items() if other in labels)
                for other in labels_of[str(session)]
            ):
                held, wanted = trial, wanted - 1
    return held, notes


# --- augmentation (rows) ------------------------------------------------------------------

_XY = slice(0, 2 * NUM_JOINTS)
_VIS = slice(2 * NUM_JOINTS, 3 * NUM_JOINTS)
_LEGS = np.array([9, 10, 11, 12])  # knees and ankles (runtime/pose_features.BODY_JOINTS)


def augment_rows(
    rows: np.ndarray, labels: np.ndarray, rng: np.random.Generator, *, pose: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """One draw of the mocap training split's camera effects that apply to pose rows
    (TRAIN_RANGES): playback speed, mirroring, keypoint noise (a share of the torso),
    lost joints, a waist cut, whole-person dropouts. Rows with nobody stay all-zero.
    `pose` False (rows of another encoder): the playback speed alone."""
    ranges = TRAIN_RANGES
    rows, labels = _resample(rows, labels, ranges.draw_speed(rng), pose=pose)
    if not pose:
        return rows, labels
    rows = rows.copy()
    person = rows[:, -1] >= 0.5
    xy = rows[:, _XY].reshape(len(rows), NUM_JOINTS, 2)
    vis = rows[:, _VIS]
    if rng.random() < ranges.mirror:
        xy = xy[:, list(MIRROR_INDEX)] * np.array([-1.0, 1.0], np.float32)
        vis = vis[:, list(MIRROR_INDEX)]
    unsure = np.zeros(vis.shape, bool)
    if rng.random() < ranges.waist_cut:
        unsure[:, _LEGS] = True
        vis[:, _LEGS] = np.minimum(vis[:, _LEGS], rng.uniform(0.0, 0.3, (len(rows), len(_LEGS))))
    lost = rng.random(vis.shape) < rng.uniform(*ranges.dropout)
    vis = np.where(lost, np.minimum(vis, rng.uniform(0.0, 0.25, vis.shape)), vis)
    # camera.py: sigma = noise * TORSO_METRES in pixels at the torso's depth, i.e. about
    # `noise` torso lengths once rows are divided by the torso (~TORSO_METRES long).
    sigma = rng.uniform(*ranges.noise) * TORSO_METRES / 0.5
    scale = np.where(unsure | (vis < 0.5), 2.5, 1.0) * np.where(lost, 6.0, 1.0)
    xy = xy + rng.normal(size=xy.shape).astype(np.float32) * (sigma * scale)[..., None]
    rows[:, _XY] = xy.reshape(len(rows), -1)
    rows[:, _VIS] = np.clip(vis, 0.0, 1.0)
    dropped = ranges.draw_person_dropouts(len(rows), rng) if ranges.person_dropout[1] else None
    if dropped is not None and dropped.any():
        rows[dropped, :-1] = 0.0
        rows[dropped, -1] = rng.uniform(0.0, 0.45, int(dropped.sum()))
    rows[~person, :-1] = 0.0
    return rows.astype(np.float32), labels


def _resample(
    rows: np.ndarray, labels: np.ndarray, speed: float, *, pose: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """The rows played at `speed` (> 1 faster): linear between two rows (pose rows: two
    with a person), else the nearest row; labels from the nearest row."""
    n = max(1, round(len(rows) / speed))
    times = np.minimum(np.arange(n) * speed, len(rows) - 1)
    lo = np.floor(times).astype(int)
    hi = np.minimum(lo + 1, len(rows) - 1)
    w = (times - lo)[:, None].astype(np.float32)
    nearest = np.where(w[:, 0] < 0.5, lo, hi)
    both = (rows[lo, -1] >= 0.5) & (rows[hi, -1] >= 0.5) if pose else np.ones(n, bool)
    out = np.where(both[:, None], rows[lo] * (1 - w) + rows[hi] * w, rows[nearest])
    return out.astype(np.float32), labels[nearest]


# --- the training mix ---------------------------------------------------------------------


class TeachMix:
    """Batches of `share` example windows (augmented, half of them after a stretch of a
    mocap video) and mocap training windows, labels in the new class space."""

    def __init__(
        self,
        examples: list[FeatureVideo],
        mocap: TrainWindows,
        mocap_map: np.ndarray,
        spec: Any,
        budget: TeachBudget,
        background: int,
        *,
        pose: bool,
    ) -> None:
        self.examples, self.mocap, self.map, self.spec = examples, mocap, mocap_map, spec
        self.budget, self.background, self.pose = budget, background, pose
        self.rng = np.random.default_rng([budget.seed, 2027])

    def batch(self) -> dict[str, torch.Tensor]:
        b = self.budget
        n_examples = max(1, round(b.batch_size * b.examples_share))
        items = [self._example_window() for _ in range(n_examples)]
        for i in self.rng.integers(len(self.mocap), size=b.batch_size - n_examples):
            window, mask, label, _ = self.mocap[int(i)]
            items.append((window, mask, int(self.map[label]), -1))
        return collate(items)

    def _example_window(self) -> tuple[np.ndarray, np.ndarray, int, int]:
        rng = self.rng
        video = self.examples[int(rng.integers(len(self.examples)))]
        rows, labels = video.features, video.labels
        if self.budget.augment:
            rows, labels = augment_rows(rows, labels, rng, pose=self.pose)
        usable = np.flatnonzero(labels >= 0)
        actions = usable[labels[usable] != self.background]
        pool = actions if len(actions) and rng.random() < 0.75 else usable
        t = int(rng.choice(pool))
        context = 0
        if rng.random() < 0.5:  # after other motion, as in a stream
            other = self.mocap.videos[int(rng.integers(len(self.mocap.videos)))]
            context = int(rng.integers(1, self.spec.size))
            start = int(rng.integers(0, max(1, len(other) - context)))
            before = np.asarray(other.features[start : start + context], np.float32)
            rows = np.concatenate([before, rows[: t + 1]])
            t = len(rows) - 1
        window, mask = build_window(rows, t, self.spec)
        return window, mask, int(labels[t - context if context else t]), -1


# --- evaluation ---------------------------------------------------------------------------


def mocap_logits(package: ModelPackage, videos: list[FeatureVideo]) -> np.ndarray:
    engine = OnnxEngine.load(package, providers=("cpu",))
    return np.concatenate(
        [package_logits(package, np.asarray(v.features, np.float32), engine) for v in videos]
    )


def old_class_metrics(
    logits: np.ndarray, videos: list[FeatureVideo], info: DataInfo, columns: np.ndarray
) -> dict[str, Any]:
    """mAP, frame accuracy and per class AP of the built-in data's held-out frames (its
    classes: the old ones), from a package's logits; `columns[k]` is the package's class
    of the data's model class k."""
    probs = softmax(logits)
    labels = np.concatenate([v.labels for v in videos])
    keep = labels != (info.ignore_index if info.ignore_index is not None else -1)
    model_labels = np.array([info.to_model_index(int(y)) for y in labels[keep]])
    probs = probs[keep]
    targets = np.zeros((len(model_labels), len(columns)), np.float32)
    targets[np.arange(len(model_labels)), model_labels] = 1.0
    names = list(info.model_class_names)
    ap = per_frame_ap(
        targets, probs[:, columns], names, background_index=info.model_background_index
    )
    return {
        "map": ap.map,
        "frame_accuracy": float(np.mean(probs.argmax(1) == columns[model_labels])),
        "per_class_ap": ap.per_class_ap,
        "frames": len(probs),
        "videos": len(videos),
    }


def example_accuracy(
    package: ModelPackage, videos: list[FeatureVideo], classes: tuple[str, ...]
) -> tuple[dict[str, float | None], np.ndarray, np.ndarray]:
    """Per class of the held-out examples: the share of its rows labelled so, each
    example scored alone (as /classify scores a clip); with the logits and labels."""
    if not videos:
        return {}, np.zeros((0, len(classes))), np.zeros(0, np.int64)
    engine = OnnxEngine.load(package, providers=("cpu",))
    logits, labels = [], []
    for v in videos:
        logits.append(package_logits(package, np.asarray(v.features, np.float32), engine))
        labels.append(v.labels)
    all_logits, all_labels = np.concatenate(logits), np.concatenate(labels)
    predicted = all_logits.argmax(1)
    accuracy: dict[str, float | None] = {}
    for c in sorted(set(all_labels[all_labels >= 0].tolist())):
        rows = all_labels == c
        accuracy[classes[c]] = round(float((predicted[rows] == c).mean()), 4)
    keep = all_labels >= 0
    return accuracy, all_logits[keep], all_labels[keep]


# --- the job ------------------------------------------------------------------------------


def teach(
    examples: Path,
    base: Path,
    out: Path,
    *,
    budget: TeachBudget | None = None,
    mocap: Path | None = None,
    base_checkpoint_dir: Path | None = None,
    progress: Progress | None = None,
) -> TeachResult:
    """Train `base` (a package version folder, or its model folder: the newest version) on
    the examples at `examples` with the mocap data in the mix; write `out/N+1/`. `mocap`:
    the built-in data (default: the base's training data, from its manifest)."""
    budget = budget or TeachBudget()
    say = progress or (lambda stage, fraction, info: None)
    started = time.monotonic()
    seconds: dict[str, float] = {}
    torch.manual_seed(budget.seed)

    say("prepare", 0.0, {"message": f"reading {base}"})
    package = read_package(Path(base))
    if not package.has_head or package.is_streaming:
        raise ConfigError("teach fine-tunes a windowed package (head.onnx)")
    mocap = Path(mocap) if mocap is not None else _base_data(package)
    mocap_info = load_data_info(mocap)
    if not set(mocap_info.model_class_names) <= set(package.classes):
        raise ConfigError(
            f"the built-in data at {mocap} has classes {list(mocap_info.model_class_names)}, "
            f"not all the base package's {list(package.classes)}: pass the data it was "
            "trained on"
        )
    background = package.classes[package.background_index or 0]
    taught, classes = load_examples(Path(examples), package.classes, background, seed=budget.seed)
    _check_rows(taught, package)
    new_classes = classes[len(package.classes) :]
    notes = list(taught.notes)
    taught_labels = {label for labels in taught.labels.values() for label in labels}
    unseen = set(package.classes) - set(mocap_info.model_class_names) - taught_labels
    unseen.discard(background)
    if unseen:
        notes.append(
            f"{sorted(unseen)}: in the base, in neither the built-in data nor the examples: "
            "they may be forgotten (keep their examples)"
        )
    if not new_classes:
        notes.append("no new label: the examples add to the base's own classes")
    mocap_train = load_split(mocap_info, "train", limit=budget.mocap_videos)
    mocap_test = load_split(mocap_info, "test", limit=budget.eval_videos)
    checkpoint = base_checkpoint(package, base_checkpoint_dir)
    base_model = load_checkpoint(checkpoint)
    check_same_weights(base_model, package, np.asarray(mocap_test[0].features))
    spec_dir = checkpoint / BACKBONE_DIR
    info = read_checkpoint_info(checkpoint)
    spec = str(spec_dir) if info.embedded_backbone else info.config.backbone
    model = grow(base_model, classes, spec, budget.seed)
    seconds["prepare"] = round(time.monotonic() - started, 1)

    # --- fine-tune ---
    windows = TrainWindows(mocap_train, mocap_info, model.config.window, seed=budget.seed)
    index = {name: i for i, name in enumerate(classes)}
    mocap_map = np.array([index[name] for name in mocap_info.model_class_names])
    base_columns = np.array([package.classes.index(n) for n in mocap_info.model_class_names])
    pose = is_pose(package)
    if budget.augment and not pose:
        notes.append("augmentation: playback speed only (not pose rows)")
    mix = TeachMix(
        taught.train, windows, mocap_map, model.config.window, budget, index[background], pose=pose
    )
    steps, last_loss = _fine_tune(model, mix, budget, say)
    seconds["train"] = round(time.monotonic() - started - sum(seconds.values()), 1)

    # --- export, check, write ---
    name, version = Path(out).name, next_version(Path(out), package.version)
    work = Path(out).parent / f".{name}-teach-{version}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    try:
        say("export", 0.8, {"message": f"exporting {name}/{version}"})
        run = work / "run"
        extra = dict(info.extra)
        extra["train"] = {
            "steps": steps,
            "seconds": seconds["train"],
            "loss": last_loss,
            "dataset": f"{mocap_info.name} + examples",
            "data": str(mocap),
            "examples": str(examples),
            "task": "frame",
            "base": f"{package.name}/{package.version}",
        }
        save_checkpoint(model, run / CHECKPOINT_DIR, extra=extra)
        exported = export_run(
            run / CHECKPOINT_DIR,
            work / "models",
            data=mocap,
            name=name,
            version=version,
            with_encoder=package.encoder is not None,
        )
        new_package = exported.package
        seconds["export"] = round(time.monotonic() - started - sum(seconds.values()), 1)

        say("evaluate", 0.88, {"message": "held-out examples and mocap"})
        before_logits = mocap_logits(package, mocap_test)
        after_logits = mocap_logits(new_package, mocap_test)
        before = old_class_metrics(before_logits, mocap_test, mocap_info, base_columns)
        after = old_class_metrics(after_logits, mocap_test, mocap_info, mocap_map)
        accuracy, ex_logits, ex_labels = example_accuracy(new_package, taught.held_out, classes)
        for label in new_classes:
            accuracy.setdefault(label, None)
        seconds["evaluate"] = round(time.monotonic() - started - sum(seconds.values()), 1)

        calibration = _calibration(
            package, after_logits, mocap_test, mocap_info, mocap_map, ex_logits, ex_labels
        )
        metrics = {
            **{k: after[k] for k in ("map", "frame_accuracy", "per_class_ap", "frames", "videos")},
            "held_out": f"{mocap_info.name} test split (old classes) + held-out examples",
            "examples_frame_accuracy": accuracy,
        }
        examples_note = {
            "used": len(taught.train) + len(taught.held_out),
            "train": [v.session for v in taught.train],
            "held_out": [v.session for v in taught.held_out],
            "labels": {
                label: sum(label in labels for labels in taught.labels.values())
                for label in sorted({x for labels in taught.labels.values() for x in labels})
            },
            "rows": int(sum(len(v) for v in taught.train + taught.held_out)),
        }
        seconds["total"] = round(time.monotonic() - started, 1)
        teach_note = {
            "base": f"{package.name}/{package.version}",
            "new_classes": list(new_classes),
            "examples": examples_note,
            "held_out_accuracy": accuracy,
            "old_map": {"before": round(before["map"], 4), "after": round(after["map"], 4)},
            "old_per_class_ap": {
                c: [round(before["per_class_ap"][c], 4), round(after["per_class_ap"][c], 4)]
                for c in before["per_class_ap"]
            },
            "budget": asdict(budget),
            "steps": steps,
            "seconds": dict(seconds),
            "notes": notes,
        }
        _rewrite_manifest(new_package, metrics, teach_note, calibration)
        shutil.copytree(run / CHECKPOINT_DIR, new_package.folder / KEPT_CHECKPOINT)
        read_package(new_package.folder)  # every file and digest, as the service reads it
        target = Path(out) / version
        if target.exists():
            raise ConfigError(f"{target} appeared while training: another job wrote it")
        Path(out).mkdir(parents=True, exist_ok=True)
        new_package.folder.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    seconds["total"] = round(time.monotonic() - started, 1)
    say("done", 1.0, {"message": f"wrote {target}"})
    return TeachResult(
        folder=target,
        name=name,
        version=version,
        base=f"{package.name}/{package.version}",
        classes=classes,
        new_classes=tuple(new_classes),
        examples=examples_note,
        held_out_accuracy=accuracy,
        old_map={"before": round(before["map"], 4), "after": round(after["map"], 4)},
        steps=steps,
        seconds=seconds,
        notes=tuple(notes),
        calibration=None if calibration is None else calibration.to_json(),
    )


def is_pose(package: ModelPackage) -> bool:
    """Whether the package reads pose rows (runtime/pose_features.py), which the camera
    augmentations understand."""
    kind = None if package.encoder is None else package.encoder.kind
    return package.feature_dim == FEATURE_DIM and bool(kind) and "pose" in str(kind)


def _base_data(package: ModelPackage) -> Path:
    data = (package.info.training or {}).get("data")
    if data and (Path(data) / "data_info.json").is_file():
        return Path(data)
    raise ConfigError(
        f"the base's training data ({data}) is not here: pass the built-in data (--mocap)"
    )


def _check_rows(examples: Examples, package: ModelPackage) -> None:
    info = examples.info
    if info.fps != package.fps:
        raise ConfigError(f"the examples are at {info.fps} fps, the model reads {package.fps}")
    dims = {v.features.shape[1] for v in examples.train + examples.held_out}
    if dims != {package.feature_dim}:
        raise ConfigError(
            f"the examples have {sorted(dims)}-d rows, the model reads {package.feature_dim}-d"
        )
    ours = None if package.encoder is None else package.encoder.name
    theirs = (info.encoder or {}).get("name")
    if theirs is not None and ours is not None and theirs != ours:
        raise ConfigError(f"the examples were encoded by {theirs}, the model reads {ours} rows")


def _fine_tune(
    model: GADClassifier, mix: TeachMix, budget: TeachBudget, say: Progress
) -> tuple[int, float]:
    """AdamW on every trainable weight; warm-up then cosine over whichever of the step and
    time budgets is further along. Returns (steps, last loss)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=budget.lr)
    model.train()
    start, step, loss = time.monotonic(), 0, float("nan")
    say("train", 0.05, {"step": 0, "steps": budget.steps})
    while True:
        elapsed = time.monotonic() - start
        done = step / budget.steps
        if budget.seconds is not None:
            done = max(done, elapsed / budget.seconds)
        if done >= 1.0:
            break
        lr = budget.lr * (
            done / budget.warmup
            if done < budget.warmup
            else 0.5 * (1 + math.cos(math.pi * (done - budget.warmup) / (1 - budget.warmup)))
        )
        for group in optimizer.param_groups:
            group["lr"] = max(lr, budget.lr * 0.01)
        output = model(**mix.batch())
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step, loss = step + 1, float(output.loss.item())
        if step % 10 == 0:
            say(
                "train",
                round(0.05 + 0.75 * min(done, 1.0), 3),
                {"step": step, "steps": budget.steps, "loss": round(loss, 4),
                 "elapsed_s": round(elapsed, 1)},
            )  # fmt: skip
    model.eval()
    return step, loss


def _calibration(
    base: ModelPackage,
    logits: np.ndarray,
    videos: list[FeatureVideo],
    info: DataInfo,
    columns: np.ndarray,
    example_logits: np.ndarray,
    example_labels: np.ndarray,
) -> Any:
    """The temperature of the new version fitted on the held-out frames (mocap test split
    and held-out examples) when the base was calibrated, floored as the base was."""
    if base.info.calibration is None:
        return None
    labels = np.concatenate([v.labels for v in videos])
    keep = labels != (info.ignore_index if info.ignore_index is not None else -1)
    model_labels = columns[[info.to_model_index(int(y)) for y in labels[keep]]]
    all_logits = np.concatenate([logits[keep], example_logits]).astype(np.float64)
    all_labels = np.concatenate([model_labels, example_labels]).astype(np.int64)
    floor = base.info.calibration.min_temperature
    fit = calibrate(all_logits, all_labels, min_temperature=floor)
    return section(fit, f"teach held-out: {info.name} test split ({len(videos)} videos) + examples")


def _rewrite_manifest(
    package: ModelPackage, metrics: dict[str, Any], note: dict[str, Any], calibration: Any
) -> None:
    path = package.folder / MANIFEST_FILE
    data = json.loads(path.read_text())
    data["metrics"] = metrics
    data["teach"] = note
    if calibration is not None:
        data["calibration"] = calibration.to_json()
    manifest = Manifest.from_json(data, source=path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(manifest.to_json(), indent=2, default=_json) + "\n")
    tmp.replace(path)


def _json(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
