"""The model package's manifest: ONE typed contract shared by the exporter (which builds a
`Manifest` and writes `to_json()`) and the service (which reads `Manifest.from_json`).
Torch-free (the service imports it).

`Manifest.from_json(dict)` is the one gate a manifest passes: the schema version, the
required fields and their types, and the shapes that must agree (classes vs logits,
feature size vs encoder output, a head's window, a streaming step's rings, an optional
clip model's steps and tasks vs its outputs, every graph's file listed in `files`).
`read_package(folder)` adds what needs the folder: every listed file present, of its size
and sha256. `to_json()` writes the format exactly as it is read (schema_version 1):
`Manifest.from_json(d).to_json() == d` for every manifest `gad export` writes.

A key the format may leave out is None here (and left out again on writing) unless it is
one the exporter always writes, null or not (e.g. "metrics", "verify"); a key this
version does not know is kept as it is in the object's `extra`.

    schema      the fixed names: schema version, file names, encoder kinds; PackageError
    fields      JSON values read with their types; TensorSpec, FileDigest (sha256), windows
    sections    the head, step (+ prefill) and clip graphs; Verify
    calibration CalibrationSection: the temperature of the per-frame probabilities
    encoder     EncoderSection: the frame encoder a package accepts images through
    document    Manifest: the whole manifest.json, read, written and checked
    package     ModelPackage, read_package, resolve_package_dir: a package folder on disk

Every name the project imports comes from here (`from runtime.manifest import ...`).
"""

from runtime.manifest.calibration import CalibrationSection
from runtime.manifest.document import Manifest
from runtime.manifest.encoder import EncoderSection, encoder_kind
from runtime.manifest.fields import FileDigest, Tensors, TensorSpec, file_digest, sha256
from runtime.manifest.package import ModelPackage, read_package, resolve_package_dir
from runtime.manifest.schema import (
    CLIP_FILE,
    CLIP_OUTPUTS,
    ENCODER_FILE,
    ENCODER_KINDS,
    HEAD_FILE,
    IMAGE_KIND,
    MANIFEST_FILE,
    POSE_KIND,
    PREFILL_FILE,
    REQUIRED,
    SCHEMA_VERSION,
    STEP_FILE,
    PackageError,
)
from runtime.manifest.sections import ClipSection, HeadSection, PrefillSection, StepSection, Verify

__all__ = [
    "CLIP_FILE",
    "CLIP_OUTPUTS",
    "ENCODER_FILE",
    "ENCODER_KINDS",
    "HEAD_FILE",
    "IMAGE_KIND",
    "MANIFEST_FILE",
    "POSE_KIND",
    "PREFILL_FILE",
    "REQUIRED",
    "SCHEMA_VERSION",
    "STEP_FILE",
    "CalibrationSection",
    "ClipSection",
    "EncoderSection",
    "FileDigest",
    "HeadSection",
    "Manifest",
    "ModelPackage",
    "PackageError",
    "PrefillSection",
    "StepSection",
    "TensorSpec",
    "Tensors",
    "Verify",
    "encoder_kind",
    "file_digest",
    "read_package",
    "resolve_package_dir",
    "sha256",
]
