"""A "now" label you can trust: calibration and the displayed label's smoothing, measured.

For a pose package this measures, before → after:
- how often a confident (> 80 %) label is wrong (runtime/calibration.py; "before" at T = 1,
  "after" at the temperature `gad calibrate` fitted and the manifest records), and
- how often the shown label changes per minute: raw (each frame's argmax, what the demo page
  showed) → smoothed (runtime/segments.py: `DISPLAY_RULE`, `UNCERTAIN_BELOW`, `now_label`),
  with how often the shown label is right, wrong, or "uncertain",

on (a) held-out mocap (the demo's test split: cameras, speeds and two clips training never
saw), (b) out-of-vocabulary motion (a model trained with two classes cut out of its
training videos — `oov-data` writes that dataset — scored on the test split's frames of
those classes: any action it shows there is wrong; background or "uncertain" is right),
(c) the real clips in annotations.csv (label_clips.py encodes them, the ROI tracked).

    P=docs/real-footage/now_label.py; C=$GAD_CACHE_DIR/demo-pose; O=/tmp/oov
    python $P oov-data --data $C/mocap --out $O/mocap
    gad train $O/mocap --out $O/run --kind gad --backbone tiny --long 32 --short 8 \\
        --max-steps 1200 --batch-size 32 --lr 2e-3 --lora-rank 16 --lora-alpha 32 --seed 0 \\
        --targets ours --no-progress                      # the demo's recipe (gad/demo.py)
    gad export $O/run --out $O/models --name oov --data $O/mocap
    python $P measure --model $C/models/demo-pose --data $C/mocap --val $C/mocap-val \\
        --oov-model $O/models/oov --oov-data $O/mocap

`--val` is the demo's second held-out set (`gad data mocap --train-videos 0 --test-videos 20
--seed 1`, what it calibrates on): the display rule is chosen there (the last table), the
test split only reports. About a minute once the real clips' rows are cached (`--cache`).
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runtime.calibration import Confidence, confidence, fit_temperature, softmax
from runtime.engine import OnnxEngine
from runtime.manifest import ModelPackage, read_package, resolve_package_dir
from runtime.segments import DISPLAY_RULE, SegmentRule, now_labels
from training.calibration import check_classes, package_logits
from training.data_info import load_data_info
from training.dataset import load_video

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
BACKGROUND = 0

# Cut out of the OOV model's training videos: one whole-body motion, one arm gesture.
OOV_CLASSES = ("dance", "clap")


# --------------------------------------------------------------------------- OOV dataset


def write_oov_dataset(data: Path, out: Path, classes: tuple[str, ...] = OOV_CLASSES) -> dict:
    """A copy of the mocap dataset at `data` whose training videos never show `classes`:
    each training video is cut where one of them plays (with the blend rows around it) into
    pieces that become videos of their own; the test split is the same files. The class
    list is unchanged, so the held-out classes are outputs never trained positive."""
    info_all = json.loads((data / "data_info.json").read_text())
    ((name, info),) = info_all.items()
    names = info["class_names"]
    held = [names.index(c) for c in classes]
    ignore = info["ignore_index"]
    if out.exists():
        shutil.rmtree(out)
    (out / "features").mkdir(parents=True)
    (out / "target_perframe").mkdir()
    train, cut_rows, kept_rows = [], 0, 0
    for session in info["train_session_set"]:
        features = np.load(data / "features" / f"{session}.npy")
        targets = np.load(data / "target_perframe" / f"{session}.npy")
        labels = targets.argmax(axis=1)
        drop = np.isin(labels, held)
        # the blend rows (ignored class) next to a dropped run show the motion too
        for step in (1, -1):
            order = range(len(labels)) if step == 1 else range(len(labels) - 1, -1, -1)
            prev = False
            for i in order:
                if labels[i] == ignore and prev:
                    drop[i] = True
                prev = bool(drop[i])
        cut_rows += int(drop.sum())
        keep = ~drop
        starts = np.flatnonzero(keep & ~np.r_[False, keep[:-1]])
        ends = np.flatnonzero(keep & ~np.r_[keep[1:], False]) + 1
        for k, (s, e) in enumerate(zip(starts, ends, strict=True)):
            piece = f"{session}_{k}"
            np.save(out / "features" / f"{piece}.npy", features[s:e])
            np.save(out / "target_perframe" / f"{piece}.npy", targets[s:e])
            train.append(piece)
            kept_rows += int(e - s)
    for session in info["test_session_set"]:
        for folder in ("features", "target_perframe"):
            (out / folder / f"{session}.npy").symlink_to(
                (data / folder / f"{session}.npy").resolve()
            )
    info = dict(info, train_session_set=train)
    (out / "data_info.json").write_text(json.dumps({name: info}, indent=2) + "\n")
    summary = {
        "held_out_classes": list(classes),
        "train_videos": len(train),
        "train_rows_kept": kept_rows,
        "train_rows_cut": cut_rows,
    }
    (out / "oov.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# --------------------------------------------------------------------------- sequences


@dataclass
class Sequence:
    """One video's per-frame logits [T, C] (T = 1) and labels [T] (model class indices;
    -1 unlabelled: the ignored class, or no annotation)."""

    name: str
    logits: np.ndarray
    labels: np.ndarray


def mocap_sequences(package: ModelPackage, data: Path, split: str) -> list[Sequence]:
    """Every video of `split`, whole (the smoothing needs every frame in order)."""
    info = load_data_info(data)
    check_classes(package, info)
    engine = OnnxEngine.load(package, providers=("cpu",))
    out = []
    for session in info.sessions(split):
        video = load_video(info, session)
        labels = np.array([info.to_model_index(int(y)) for y in video.labels])
        if info.ignore_index is not None:
            labels[video.labels == info.ignore_index] = -1
        rows = np.asarray(video.features, np.float32)
        out.append(Sequence(session, package_logits(package, rows, engine), labels))
    return out


def real_sequences(package: ModelPackage, cache: Path) -> list[Sequence]:
    """The annotated real clips (label_clips.py: the package's encoder, the ROI tracked),
    their rows cached in `cache`; rows outside every annotated segment are unlabelled."""
    from label_clips import clips, read_annotations

    from runtime.encoders import open_frame_encoder
    from runtime.pose.track import clip_encoder

    annotations = read_annotations(HERE / "annotations.csv")
    engine = OnnxEngine.load(package, providers=("cpu",))
    known = clips()
    out = []
    encoder = None
    for name, segments in annotations.items():
        clip = known[name]
        if not clip.path.is_file():
            say(f"{name}: missing {clip.path}, skipped")
            continue
        path = cache / f"rows-{package.encoder_name}-{name}.npz"
        if path.is_file():
            with np.load(path) as saved:
                times, rows = saved["times"], saved["rows"]
        else:
            encoder = encoder or open_frame_encoder(package, providers=("cpu",))
            times, frames = clip.frames(package.fps)
            encode = clip_encoder(encoder)
            rows = np.concatenate(
                [
                    encode(encoder.preprocess.apply(frames[i : i + 16]))
                    for i in range(0, len(frames), 16)
                ]
            )
            cache.mkdir(parents=True, exist_ok=True)
            np.savez(path, times=times, rows=rows)
        labels = np.full(len(times), -1)
        for start, end, label in segments:
            labels[(times >= start) & (times < end)] = package.classes.index(label)
        out.append(Sequence(name, package_logits(package, rows, engine), labels))
    return out


# --------------------------------------------------------------------------- measures


def frame_confidence(
    seqs: list[Sequence],
    temperature: float,
    oov: tuple[int, ...] = (),
    *,
    actions_only: bool = False,
) -> Confidence:
    """Confident (> 80 %) and wrong, over the labelled frames of `seqs`. With `oov` (the
    classes a model never learnt), only those classes' frames, and wrong = an action;
    `actions_only`: a wrong background is not counted as wrong."""
    logits = np.concatenate([s.logits for s in seqs])
    labels = np.concatenate([s.labels for s in seqs])
    keep = labels >= 0
    if oov:
        keep &= np.isin(labels, oov)
    probs = softmax(logits[keep], temperature)
    top = probs.argmax(axis=1)
    wrong = top != labels[keep]
    if oov:
        wrong = top != BACKGROUND
    elif actions_only:
        wrong &= top != BACKGROUND
    return confidence(probs, labels[keep], wrong=wrong)


LATE_S = 2.0  # a label the annotation had this recently is late, not wrong


@dataclass
class Shown:
    """How a sequence of shown labels fared, over its scored frames: shown `right`; `late`
    (not the annotation now, but within the last LATE_S seconds: the lag of the hysteresis);
    a `wrong_action` (an action that is none of those); `missed` (background where an action
    was annotated); `uncertain`. Label changes per minute over all frames, and the
    annotation's own (its ignored rows skipped)."""

    frames: int = 0
    right: int = 0
    late: int = 0
    wrong_action: int = 0
    missed: int = 0
    uncertain: int = 0
    changes: int = 0
    truth_changes: int = 0
    minutes: float = 0.0

    def add(self, other: Shown) -> None:
        for key, value in vars(other).items():
            setattr(self, key, getattr(self, key) + value)

    def share(self, key: str) -> float:
        return getattr(self, key) / self.frames if self.frames else float("nan")

    @property
    def per_minute(self) -> float:
        return self.changes / self.minutes

    @property
    def truth_per_minute(self) -> float:
        return self.truth_changes / self.minutes


UNSURE = -2  # "uncertain" as a shown label


def shown_raw(probs: np.ndarray) -> np.ndarray:
    """Each frame's argmax: what the page showed before."""
    return probs.argmax(axis=1)


def shown_smoothed(probs: np.ndarray, rule: SegmentRule) -> np.ndarray:
    """runtime.segments.now_labels: the open segment's action, background, or uncertain."""
    out = []
    for now in now_labels(probs, rule):
        out.append(UNSURE if now.label is None else now.label)
    return np.array(out)


def score_shown(
    shown: np.ndarray, labels: np.ndarray, fps: float, oov: tuple[int, ...] = ()
) -> Shown:
    """`Shown` of one sequence. With `oov`, only those classes' frames are scored: background
    is right there, uncertain as good, any action wrong."""
    result = Shown(minutes=len(shown) / fps / 60)
    result.changes = int((np.diff(shown) != 0).sum())
    known = labels[labels >= 0]
    result.truth_changes = int((np.diff(known) != 0).sum())
    scored = labels >= 0
    if oov:
        scored &= np.isin(labels, oov)
    recent = round(LATE_S * fps)
    for t in np.flatnonzero(scored):
        got, want = int(shown[t]), int(labels[t])
        result.frames += 1
        if oov:  # background or uncertain are both right there
            if got == BACKGROUND:
                result.right += 1
            elif got == UNSURE:
                result.uncertain += 1
            else:
                result.wrong_action += 1
        elif got == want:
            result.right += 1
        elif got == UNSURE:
            result.uncertain += 1
        elif got in labels[max(t - recent, 0) : t]:
            result.late += 1
        elif got == BACKGROUND:
            result.missed += 1
        else:
            result.wrong_action += 1
    return result


def shown_on(
    seqs: list[Sequence],
    fps: float,
    temperature: float,
    rule: SegmentRule | None,
    oov: tuple[int, ...] = (),
) -> Shown:
    """`Shown` over `seqs`: raw argmax when `rule` is None, else the smoothed label."""
    total = Shown()
    for seq in seqs:
        probs = softmax(seq.logits, temperature)
        shown = shown_raw(probs) if rule is None else shown_smoothed(probs, rule)
        total.add(score_shown(shown, seq.labels, fps, oov))
    return total


# --------------------------------------------------------------------------- the report


def cached(cache: Path, key: str, make: Callable[[], list[Sequence]]) -> list[Sequence]:
    path = cache / f"{key}.pkl"
    if path.is_file():
        with path.open("rb") as handle:
            seqs: list[Sequence] = pickle.load(handle)
            return seqs
    seqs = make()
    cache.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(seqs, handle)
    return seqs


def labelled(seqs: list[Sequence], drop: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    logits = np.concatenate([s.logits for s in seqs])
    labels = np.concatenate([s.labels for s in seqs])
    keep = (labels >= 0) & ~np.isin(labels, drop)
    return logits[keep], labels[keep]


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


CANDIDATES = [(0.5, 2, 2), (0.6, 2, 2), (0.6, 2, 3), (0.6, 3, 4), (0.7, 2, 3), (0.7, 3, 3),
              (0.7, 3, 4), (0.75, 3, 5), (0.8, 2, 3)]  # fmt: skip


def measure(args: argparse.Namespace) -> None:
    cache = args.cache
    demo = read_package(resolve_package_dir(args.model))
    oov_pkg = read_package(resolve_package_dir(args.oov_model))
    oov = tuple(
        demo.classes.index(c)
        for c in json.loads((args.oov_data / "oov.json").read_text())["held_out_classes"]
    )
    tag, otag = f"{demo.name}-{demo.version}", f"{oov_pkg.name}-{oov_pkg.version}"
    sets = {
        "demo-val": cached(cache, f"{tag}-val", lambda: mocap_sequences(demo, args.val, "test")),
        "demo-test": cached(cache, f"{tag}-test", lambda: mocap_sequences(demo, args.data, "test")),
        "real": cached(cache, f"{tag}-real", lambda: real_sequences(demo, cache)),
        "oov-val": cached(cache, f"{otag}-val", lambda: mocap_sequences(oov_pkg, args.val, "test")),
        "oov-test": cached(
            cache, f"{otag}-test", lambda: mocap_sequences(oov_pkg, args.oov_data, "test")
        ),
    }
    optimum = fit_temperature(*labelled(sets["demo-val"]))
    shipped = demo.temperature
    oov_optimum = fit_temperature(*labelled(sets["oov-val"], oov))
    oov_t = max(1.0, oov_optimum)  # the demo's recipe: fitted on held-out, floored at 1
    real_optimum = fit_temperature(*labelled(sets["real"]))
    fps = demo.fps
    say(f"demo {tag}: T fitted on held-out val {optimum:.3f}, shipped (manifest) {shipped:g}")
    say(f"oov {otag} (held out: {[demo.classes[i] for i in oov]}): T on its val "
        f"{oov_optimum:.3f}, used {oov_t:g}; T the real clips alone would fit: "
        f"{real_optimum:.2f}")  # fmt: skip

    say("\n### Confident (> 80 %) labels, and how many of them are wrong\n")
    say("Share of the scored frames whose top probability is above 0.8, and (after the "
        "slash) the share that is confident and wrong.\n")  # fmt: skip
    temps = [("T = 1 (before)", 1.0, 1.0), (f"NLL optimum T = {optimum:.2f}", optimum, oov_optimum)]
    temps.append((f"shipped T = {shipped:g} (after)", shipped, oov_t))
    temps += [(f"T = {t:g}", t, t) for t in (1.5, 2.0, round(real_optimum, 1))]
    say("| set | frames | " + " | ".join(name for name, _, _ in temps) + " |")
    say("| --- | ---: |" + " ---: |" * len(temps))
    rows = [
        ("held-out mocap (test split)", sets["demo-test"], (), False),
        ("out-of-vocabulary motion (OOV model, test split's " + "/".join(
            demo.classes[i] for i in oov) + " frames; wrong = an action)", sets["oov-test"], oov,
         True),
        ("OOV model, its in-vocabulary test frames", [
            Sequence(s.name, s.logits, np.where(np.isin(s.labels, oov), -1, s.labels))
            for s in sets["oov-test"]], (), True),
        ("real clips (annotations.csv)", sets["real"], (), False),
        ("real clips, a wrong action only (not background)", sets["real"], (), False),
    ]  # fmt: skip
    for name, seqs, classes, is_oov in rows:
        cells = []
        only = name.startswith("real clips, a wrong action")
        for _, t_demo, t_oov in temps:
            c = frame_confidence(seqs, t_oov if is_oov else t_demo, classes, actions_only=only)
            cells.append(f"{pct(c.confident)} / {pct(c.confident_wrong)}")
        say(f"| {name} | {c.frames:,} | " + " | ".join(cells) + " |")

    say("\n### The shown label: each frame's argmax (raw) → DISPLAY_RULE (smoothed)\n")
    say(f"DISPLAY_RULE = {DISPLAY_RULE}, at the shipped temperature. Late: the label the "
        f"annotation had within the last {LATE_S:g} s.\n")  # fmt: skip
    say("| set | shown | right | late | wrong action | missed (background) | uncertain "
        "| changes / min (annotation's) |")  # fmt: skip
    say("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    shown_sets = [
        ("held-out mocap", sets["demo-test"], shipped, ()),
        ("out-of-vocabulary motion", sets["oov-test"], oov_t, oov),
        ("real clips", sets["real"], shipped, ()),
    ]
    for name, seqs, t, classes in shown_sets:
        for what, rule in (("raw", None), ("smoothed", DISPLAY_RULE)):
            r = shown_on(seqs, fps, t, rule, classes)
            say(f"| {name} | {what} | {pct(r.share('right'))} | {pct(r.share('late'))} "
                f"| {pct(r.share('wrong_action'))} | {pct(r.share('missed'))} "
                f"| {pct(r.share('uncertain'))} | {r.per_minute:.1f} "
                f"({r.truth_per_minute:.1f}) |")  # fmt: skip

    say("\n### Choosing the rule (held-out val: never the test split)\n")
    say("| min_score | min_frames | max_gap | right | late | wrong action | uncertain "
        "| changes / min | OOV: action shown |")  # fmt: skip
    say("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for candidate in [None, *CANDIDATES]:
        rule = None if candidate is None else SegmentRule(*candidate)
        a = shown_on(sets["demo-val"], fps, shipped, rule)
        o = shown_on(sets["oov-val"], fps, oov_t, rule, oov)
        head = "raw | | " if candidate is None else " | ".join(f"{v:g}" for v in candidate)
        say(f"| {head} | {pct(a.share('right'))} | {pct(a.share('late'))} "
            f"| {pct(a.share('wrong_action'))} | {pct(a.share('uncertain'))} "
            f"| {a.per_minute:.1f} | {pct(o.share('wrong_action'))} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    oov = sub.add_parser("oov-data", help="the mocap dataset with classes cut out of training")
    oov.add_argument("--data", type=Path, required=True, help="the demo's mocap dataset")
    oov.add_argument("--out", type=Path, required=True)
    oov.add_argument("--classes", nargs="+", default=list(OOV_CLASSES))
    report = sub.add_parser("measure", help="the tables of docs/pose.md")
    report.add_argument("--model", type=Path, required=True, help="the pose demo package")
    report.add_argument("--data", type=Path, required=True, help="its mocap dataset")
    report.add_argument("--val", type=Path, required=True, help="held-out mocap (test split)")
    report.add_argument("--oov-model", type=Path, required=True)
    report.add_argument("--oov-data", type=Path, required=True, help="oov-data's folder")
    report.add_argument("--cache", type=Path, default=Path("/tmp/now-label"))
    args = parser.parse_args()
    if args.command == "oov-data":
        say(json.dumps(write_oov_dataset(args.data, args.out, tuple(args.classes)), indent=1))
    else:
        measure(args)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
