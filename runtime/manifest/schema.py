"""The manifest format's fixed names: its schema version, the package's file names, the
frame encoder kinds, clip.onnx's outputs, the keys of a manifest (those every one has), and
PackageError."""

from __future__ import annotations

from runtime.errors import CheckpointError

SCHEMA_VERSION = 1
MANIFEST_FILE = "manifest.json"
HEAD_FILE = "head.onnx"
ENCODER_FILE = "encoder.onnx"
# Frame encoder kinds (EncoderSection.kind; absent in the JSON = "image", encoder.onnx on
# preprocessed pixels). "pose-blazepose": runtime/pose/, its two graphs in file + files.
IMAGE_KIND, POSE_KIND = "image", "pose-blazepose"
ENCODER_KINDS = (IMAGE_KIND, POSE_KIND)
CLIP_FILE = "clip.onnx"
STEP_FILE = "step.onnx"  # a streaming-attention package's per-frame step (no head.onnx)
PREFILL_FILE = "prefill.onnx"  # its N-steps-in-one-pass graph (replays, clips); optional
# clip.onnx's outputs, in the order ClipEngine returns them, and the names each one scores.
CLIP_OUTPUTS = {"step_logits": "steps", "task_logits": "tasks", "next_logits": "steps"}
# manifest.json's keys in the order they are written (Manifest.FIELDS), each True where
# every manifest has it (REQUIRED, null or not).
KEYS = {
    "schema_version": True,
    "name": True,
    "version": True,
    "created": False,
    "kind": True,
    "classes": True,
    "background_index": True,
    "fps": True,
    "feature_dim": True,
    "window": True,
    "head": True,
    "encoder": False,
    "backbone": False,
    "parameters": False,
    "training": False,
    "metrics": False,
    "verify": False,
    "step": False,
    "attention": False,
    "clip": False,
    "calibration": False,
    "files": True,
}
REQUIRED = tuple(key for key, required in KEYS.items() if required)


class PackageError(CheckpointError):
    """A model package that is missing, tampered with, or of another schema."""
