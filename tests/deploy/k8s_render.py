"""A small kustomize: exactly the features k8s/ uses, so the manifests render without kubectl.

    docs = render(Path("k8s/overlays/gpu"))   # list of dicts, what `kubectl kustomize` prints

Implemented: `resources` (files and directories), `components`, `configMapGenerator` and
`secretGenerator` (`literals`, `envs`; behavior create / merge / replace; the content-hash
name suffix and the references to it), `patches` (JSON 6902 only, a `target` by kind and
name), `namespace`, `labels` (`pairs`, `includeTemplates`; not `includeSelectors`) and
`images` (`newName`, `newTag`, `digest`). Anything else raises `Unsupported`: k8s/ may not
start using a feature this file would silently ignore. tests/deploy/test_k8s.py compares
every rendering with `kubectl kustomize` wherever kubectl is installed (CI), so the two
cannot drift. The order of the steps is kustomize's: resources, components, generators,
patches, namespace, labels, images; name hashes and references last, over the whole build.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "namespace",
    "labels",
    "images",
    "configMapGenerator",
    "secretGenerator",
    "patches",
}
GENERATOR_KEYS = {"name", "behavior", "literals", "envs", "type"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
Doc = dict[str, Any]


class Unsupported(ValueError):
    """The kustomization uses something this renderer does not implement."""


@dataclass
class _Resource:
    doc: Doc
    hashed: bool = False  # from a generator: gets the content-hash suffix at the end


def render(path: Path) -> list[Doc]:
    """The documents `kubectl kustomize PATH` prints (as parsed YAML; order aside)."""
    resources = _build(Path(path), [], kind="Kustomization")
    renames: dict[tuple[str, str], str] = {}
    for res in resources:
        if res.hashed:
            meta = res.doc["metadata"]
            new = f"{meta['name']}-{content_hash(res.doc)}"
            renames[(res.doc["kind"], meta["name"])] = new
            meta["name"] = new
    docs = [res.doc for res in resources]
    for doc in docs:
        _rename_references(doc, renames)
    return docs


def content_hash(doc: Doc) -> str:
    """kustomize's name suffix for a generated ConfigMap or Secret.

    kustomize (api/hasher) hashes kind, data (+ binaryData) and, for a Secret, type. It
    also means to hash the name, but looks it up as one field called "metadata/name",
    which never exists: the name enters as "". Go's json.Marshal: sorted keys, no spaces,
    <, >, & escaped. sha256 hex, first 10 characters, 0 1 3 a e mapped to g h k m t."""
    if doc["kind"] == "ConfigMap":
        encoded: Doc = {"kind": "ConfigMap", "name": "", "data": doc.get("data") or ""}
        if doc.get("binaryData"):
            encoded["binaryData"] = doc["binaryData"]
    else:
        encoded = {
            "kind": "Secret",
            "type": doc.get("type", ""),
            "name": "",
            "data": doc.get("data") or "",
        }
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


# --- one kustomization --------------------------------------------------------------------


def _build(root: Path, incoming: list[_Resource], *, kind: str) -> list[_Resource]:
    spec = _load_kustomization(root)
    if spec.get("kind", "Kustomization") != kind:
        raise Unsupported(f"{root}: expected a {kind}, found a {spec.get('kind')}")
    resources = list(incoming) if kind == "Component" else []
    for entry in spec.get("resources", []):
        target = root / entry
        if target.is_dir():
            resources += _build(target, [], kind="Kustomization")
        else:
            resources += [_Resource(doc) for doc in _load_docs(target)]
    for entry in spec.get("components", []):
        resources = _build(root / entry, resources, kind="Component")
    for generator in spec.get("configMapGenerator", []):
        resources = _generate(root, generator, resources, kind="ConfigMap")
    for generator in spec.get("secretGenerator", []):
        resources = _generate(root, generator, resources, kind="Secret")
    for patch in spec.get("patches", []):
        _apply_patch(root, patch, resources)
    if "namespace" in spec:
        for res in resources:
            res.doc["metadata"]["namespace"] = spec["namespace"]
    for labels in spec.get("labels", []):
        _add_labels(labels, resources)
    for image in spec.get("images", []):
        _set_image(image, resources)
    return resources


def _load_kustomization(root: Path) -> Doc:
    found = [root / name for name in KUSTOMIZATION_FILES if (root / name).is_file()]
    if len(found) != 1:
        raise FileNotFoundError(f"{root}: expected one of {KUSTOMIZATION_FILES}")
    spec = yaml.safe_load(found[0].read_text()) or {}
    unknown = set(spec) - KEYS
    if unknown:
        raise Unsupported(f"{found[0]}: {sorted(unknown)} not implemented by the renderer")
    return spec


def _load_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# --- generators ---------------------------------------------------------------------------


def _generate(root: Path, gen: Doc, resources: list[_Resource], *, kind: str) -> list[_Resource]:
    unknown = set(gen) - GENERATOR_KEYS
    if unknown:
        raise Unsupported(f"{kind} generator {gen.get('name')}: {sorted(unknown)}")
    pairs: dict[str, str] = {}
    for env in gen.get("envs", []):
        pairs.update(_env_file(root / env))
    for literal in gen.get("literals", []):
        key, sep, value = literal.partition("=")
        if not sep or not ENV_NAME.match(key) or value[:1] in ("'", '"'):
            raise Unsupported(f"literal {literal!r}: write KEY=VALUE, unquoted")
        pairs[key] = value
    behavior = gen.get("behavior", "create")
    existing = [r for r in resources if _is(r.doc, kind, gen["name"])]
    if behavior == "create":
        if existing:
            raise ValueError(f"{kind} {gen['name']} already exists: use behavior merge")
        doc: Doc = {"apiVersion": "v1", "kind": kind, "metadata": {"name": gen["name"]}}
        if kind == "Secret":
            doc["type"] = gen.get("type", "Opaque")
        _put_data(doc, pairs)
        return [*resources, _Resource(doc, hashed=True)]
    if len(existing) != 1:
        raise ValueError(f"{kind} {gen['name']}: behavior {behavior} needs one to {behavior}")
    doc = existing[0].doc
    if behavior == "replace":
        doc.pop("data", None)
    elif behavior != "merge":
        raise Unsupported(f"generator behavior {behavior!r}")
    _put_data(doc, pairs)
    return resources


def _env_file(path: Path) -> dict[str, str]:
    """kustomize's env file: KEY=VALUE lines, leading space and `#` comment lines skipped."""
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: copy {path.name}.example beside it and fill it (k8s/README.md)"
        )
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not ENV_NAME.match(key):
            raise Unsupported(f"{path}: {line!r} is not KEY=VALUE")
        pairs[key] = value
    return pairs


def _put_data(doc: Doc, pairs: dict[str, str]) -> None:
    data = doc.setdefault("data", {})
    for key, value in pairs.items():
        data[key] = base64.b64encode(value.encode()).decode() if doc["kind"] == "Secret" else value


# --- transformers -------------------------------------------------------------------------


def _apply_patch(root: Path, patch: Doc, resources: list[_Resource]) -> None:
    if set(patch) - {"path", "patch", "target"} or set(patch.get("target", {})) - {"kind", "name"}:
        raise Unsupported(f"patch {patch}: only path/patch with a target kind and name")
    text = (root / patch["path"]).read_text() if "path" in patch else patch["patch"]
    ops = yaml.safe_load(text)
    if not isinstance(ops, list):
        raise Unsupported(f"patch {patch}: strategic merge patches are not implemented")
    target = patch["target"]
    matched = [r for r in resources if _is(r.doc, target.get("kind"), target.get("name"))]
    if not matched:
        raise ValueError(f"patch {patch}: no resource matches {target}")
    for res in matched:
        for op in ops:
            _json_patch(res.doc, op)


def _json_patch(doc: Doc, op: Doc) -> None:
    """RFC 6902 add / replace / remove."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
    parent: Any = doc
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last, kind = parts[-1], op["op"]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if kind == "add":
            parent.insert(index, copy.deepcopy(op["value"]))
        elif kind == "replace":
            parent[index] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[index]
        else:
            raise Unsupported(f"JSON patch op {kind!r}")
        return
    if kind in ("replace", "remove") and last not in parent:
        raise KeyError(f"{op['path']}: nothing to {kind}")
    if kind in ("add", "replace"):
        parent[last] = copy.deepcopy(op["value"])
    elif kind == "remove":
        del parent[last]
    else:
        raise Unsupported(f"JSON patch op {kind!r}")


def _add_labels(spec: Doc, resources: list[_Resource]) -> None:
    if set(spec) - {"pairs", "includeTemplates", "includeSelectors"} or spec.get(
        "includeSelectors"
    ):
        raise Unsupported(f"labels {spec}: only pairs and includeTemplates")
    for res in resources:
        res.doc["metadata"].setdefault("labels", {}).update(spec["pairs"])
        if spec.get("includeTemplates") and res.doc["kind"] in WORKLOADS:
            template = res.doc["spec"]["template"].setdefault("metadata", {})
            template.setdefault("labels", {}).update(spec["pairs"])


def _set_image(spec: Doc, resources: list[_Resource]) -> None:
    if set(spec) - {"name", "newName", "newTag", "digest"}:
        raise Unsupported(f"images entry {spec}")
    for res in resources:
        if res.doc["kind"] not in WORKLOADS:
            continue
        pod = res.doc["spec"]["template"]["spec"]
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            name, tag = split_image(container["image"])
            if name != spec["name"]:
                continue
            name = spec.get("newName", name)
            if "digest" in spec:
                tag = "@" + spec["digest"]
            elif "newTag" in spec:
                tag = ":" + str(spec["newTag"])
            container["image"] = name + tag


def split_image(image: str) -> tuple[str, str]:
    """'host:5000/a/b:1.2' → ('host:5000/a/b', ':1.2'); a digest keeps its '@'."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


# --- name references ----------------------------------------------------------------------


def _rename_references(doc: Doc, renames: dict[tuple[str, str], str]) -> None:
    """Point envFrom, env valueFrom and volumes at the generated (hashed) names."""
    if doc["kind"] not in WORKLOADS or not renames:
        return
    pod = doc["spec"]["template"]["spec"]

    def fix(ref: Doc | None, kind: str, field: str = "name") -> None:
        if ref is not None and (kind, ref.get(field)) in renames:
            ref[field] = renames[(kind, ref[field])]

    for container in pod.get("containers", []) + pod.get("initContainers", []):
        for source in container.get("envFrom", []):
            fix(source.get("configMapRef"), "ConfigMap")
            fix(source.get("secretRef"), "Secret")
        for env in container.get("env", []):
            value_from = env.get("valueFrom", {})
            fix(value_from.get("configMapKeyRef"), "ConfigMap")
            fix(value_from.get("secretKeyRef"), "Secret")
    for volume in pod.get("volumes", []):
        fix(volume.get("configMap"), "ConfigMap")
        fix(volume.get("secret"), "Secret", "secretName")


def _is(doc: Doc, kind: str | None, name: str | None) -> bool:
    return doc.get("kind") == kind and doc.get("metadata", {}).get("name") == name
