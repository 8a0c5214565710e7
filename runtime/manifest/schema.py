"""The manifest format's fixed names: its schema version, the package's file names, the
frame encoder kinds, clip.onnx's outputs, the keys every manifest has, and PackageError."""

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
REQUIRED = (
    "schema_version",
    "name",
    "version",
    "kind",
    "classes",
    "background_index",
    "fps",
    "feature_dim",
    "window",
    "head",
    "files",
)


class PackageError(CheckpointError):
    """A model package that is missing, tampered with, or of another schema."""
