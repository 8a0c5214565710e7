"""k8s/: every kustomization renders, validates strictly, and says what the service needs.

Offline, three layers:
1. Rendering: tests/deploy/k8s_render.py, the same output as `kubectl kustomize` (compared
   document for document wherever kubectl is installed, so the renderer cannot drift).
2. Schemas: kubernetes-validate --strict (JSON schemas bundled with the package) against
   Kubernetes 1.30, the oldest version the manifests support (preStop `sleep` is on by
   default from 1.30), and 1.37, the newest bundled. An unknown field is an error. CRDs
   have no bundled schema: the allowlist CRDS names each one with the hand check that
   replaces the schema.
3. Meaning: probes on /readyz and /healthz at the container port, GPU requests, the
   NetworkPolicy around Redis, non-root pods, HPA and PDB pointing at the gad pods, every
   GAD_* variable a real setting that the service parses. Each check is shown to catch a
   planted error, and so is the schema validation.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from service.settings import Settings
from tests.deploy.k8s_render import Unsupported, render, split_image

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
KUBERNETES_VERSION = "1.30"  # the oldest the manifests support
NEWEST_VERSION = "1.37"  # the newest kubernetes-validate 1.37.0 bundles: no removed APIs
KUSTOMIZATIONS = (
    "base", "overlays/cpu", "overlays/gpu", "overlays/gpu-monitoring", "overlays/cpu-gateway",
    "overlays/cpu-teach",
)  # fmt: skip
GPU = ("overlays/gpu", "overlays/gpu-monitoring")
NAMESPACE = "gad"
SERVE_IMAGE = "ghcr.io/gad-stream/gad-serve"
UVICORN_GRACE_S = 10 + 5  # GRACEFUL_SHUTDOWN_S (service/server.py) + lifespan's wait
Doc = dict[str, Any]


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kubernetes_validate() -> ModuleType:
    try:
        import kubernetes_validate
    except ImportError:  # a missing validator must fail CI, never skip it
        pytest.fail("kubernetes-validate is not installed: run make setup", pytrace=False)
    return kubernetes_validate


def copy_k8s(dest: Path) -> Path:
    """k8s/ in a temp folder, with the example API keys as secrets.env (a real secrets.env
    in the working tree is never read)."""
    tree = dest / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("secrets.env"))
    shutil.copy(tree / "base" / "secrets.env.example", tree / "base" / "secrets.env")
    return tree


@pytest.fixture(scope="session")
def k8s_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_k8s(tmp_path_factory.mktemp("k8s"))


@pytest.fixture(scope="session")
def rendered(k8s_tree: Path) -> dict[str, list[Doc]]:
    return {name: render(k8s_tree / name) for name in KUSTOMIZATIONS}


# --- helpers ------------------------------------------------------------------------------


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(docs: list[Doc], name: str = "gad") -> Doc:
    return find(docs, "Deployment", name)["spec"]["template"]["spec"]


def container(docs: list[Doc], name: str = "gad", *, deployment: str = "gad") -> Doc:
    (found,) = [c for c in pod_spec(docs, deployment)["containers"] if c["name"] == name]
    return found


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def pod_labels(docs: list[Doc], name: str) -> dict[str, str]:
    return find(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]


def pod_env(docs: list[Doc]) -> dict[str, str]:
    """The environment the gad container starts with: envFrom, then env."""
    box = container(docs)
    env: dict[str, str] = {}
    for source in box.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
        else:
            data = find(docs, "Secret", source["secretRef"]["name"])["data"]
            env.update({k: base64.b64decode(v).decode() for k, v in data.items()})
    env.update({e["name"]: e["value"] for e in box.get("env", [])})
    return env


def container_port(box: Doc, port: int | str) -> int:
    """A probe's or Service's port, named or numbered, as the container port number."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in box["ports"] if p.get("name") == port]
    return number


def validate_all(
    module: ModuleType,
    docs: list[Doc],
    *,
    strict: bool = True,
    version: str = KUBERNETES_VERSION,
) -> list[str]:
    """Errors of kubernetes-validate on every document; CRDs through their hand check."""
    errors = []
    for doc in docs:
        ident = f"{doc['kind']}/{doc['metadata']['name']}"
        crd_check = CRDS.get((doc["apiVersion"], doc["kind"]))
        if crd_check is not None:
            errors += [f"{ident}: {problem}" for problem in crd_check(doc)]
            continue
        try:
            module.validate(doc, version, strict=strict)
        except module.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            errors.append(f"{ident}: {path}: {exc.message}")
        except module.SchemaNotFoundError as exc:
            errors.append(f"{ident}: {exc.message} (a CRD? add its hand check to CRDS)")
    return errors


# --- hand checks for CRDs (no schema in kubernetes-validate) ------------------------------

SERVICEMONITOR_SPEC = {
    "endpoints", "selector", "namespaceSelector", "jobLabel", "targetLabels",
    "podTargetLabels", "sampleLimit", "targetLimit", "labelLimit", "attachMetadata",
}  # fmt: skip
SERVICEMONITOR_ENDPOINT = {
    "port", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout",
    "honorLabels", "honorTimestamps", "relabelings", "metricRelabelings", "tlsConfig",
    "authorization", "basicAuth", "bearerTokenSecret", "followRedirects", "enableHttp2",
}  # fmt: skip


def check_servicemonitor(doc: Doc) -> list[str]:
    """monitoring.coreos.com/v1 ServiceMonitor: required fields and known keys only."""
    problems = []
    spec = doc.get("spec") or {}
    if set(doc) - {"apiVersion", "kind", "metadata", "spec"}:
        problems.append(f"unknown top-level keys {sorted(set(doc) - {'metadata', 'spec'})}")
    if unknown := set(spec) - SERVICEMONITOR_SPEC:
        problems.append(f"spec: unknown keys {sorted(unknown)}")
    if not (spec.get("selector") or {}).get("matchLabels"):
        problems.append("spec.selector.matchLabels is required")
    endpoints = spec.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        problems.append("spec.endpoints must be a non-empty list")
    for i, endpoint in enumerate(endpoints or []):
        if unknown := set(endpoint) - SERVICEMONITOR_ENDPOINT:
            problems.append(f"spec.endpoints[{i}]: unknown keys {sorted(unknown)}")
        if not isinstance(endpoint.get("port"), str):
            problems.append(f"spec.endpoints[{i}].port must name a Service port")
    return problems


CRDS: dict[tuple[str, str], Callable[[Doc], list[str]]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): check_servicemonitor,
}


# --- 1. rendering -------------------------------------------------------------------------


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_renderer_equals_kubectl_kustomize(name: str, k8s_tree: Path, rendered: dict) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: the renderer is not compared with kustomize here")
    run = subprocess.run(
        [kubectl, "kustomize", str(k8s_tree / name)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    theirs = sorted(json.dumps(d, sort_keys=True) for d in yaml.safe_load_all(run.stdout) if d)
    ours = sorted(json.dumps(d, sort_keys=True) for d in rendered[name])
    assert ours == theirs, "\n".join(
        f"{'python ' if d in ours else 'kubectl'} {d}" for d in sorted(set(ours) ^ set(theirs))
    )


def test_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("namePrefix: x-\nresources: []\n")
    with pytest.raises(Unsupported, match="namePrefix"):
        render(tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "resources: [d.yaml]\npatches:\n  - path: p.yaml\n    target: {kind: ConfigMap, name: a}\n"
    )
    (tmp_path / "d.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")
    (tmp_path / "p.yaml").write_text("data: {x: y}\n")  # a strategic merge patch
    with pytest.raises(Unsupported, match="strategic merge"):
        render(tmp_path)


def test_missing_secrets_env_is_a_clear_error(tmp_path: Path) -> None:
    tree = copy_k8s(tmp_path)
    (tree / "base" / "secrets.env").unlink()
    with pytest.raises(FileNotFoundError, match=r"secrets\.env\.example"):
        render(tree / "overlays" / "gpu")


def test_api_keys_file_is_git_ignored() -> None:
    assert (K8S / "base" / "secrets.env.example").is_file()
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        assert "secrets.env" in (K8S / ".gitignore").read_text().split()
        return
    ignored = subprocess.run(
        [git, "check-ignore", "-q", "k8s/base/secrets.env"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, "k8s/base/secrets.env must be git-ignored"


def test_split_image() -> None:
    assert split_image("redis:7.4.2") == ("redis", ":7.4.2")
    assert split_image("localhost:5000/a/b") == ("localhost:5000/a/b", "")
    assert split_image("a/b@sha256:00") == ("a/b", "@sha256:00")


# --- 2. schemas ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [KUBERNETES_VERSION, NEWEST_VERSION])
@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_manifests_validate_strict(
    name: str, version: str, rendered: dict, kubernetes_validate
) -> None:
    assert validate_all(kubernetes_validate, rendered[name], version=version) == []


PLANTED = {
    # file under k8s/, text to replace, replacement, where the error must be reported
    "port-not-a-number": (
        "base/deployment.yaml",
        "containerPort: 8000",
        'containerPort: "eighty"',
        "Deployment/gad: spec.template.spec.containers.0.ports.0.containerPort",
    ),
    "unknown-field-under-spec": (
        "base/deployment.yaml",
        "  revisionHistoryLimit: 10",
        "  replica: 2\n  revisionHistoryLimit: 10",
        "Deployment/gad: spec: Additional properties are not allowed ('replica'",
    ),
    "misspelt-probe-field": (
        "base/deployment.yaml",
        "path: /readyz",
        "paht: /readyz",
        "readinessProbe.httpGet: Additional properties are not allowed ('paht'",
    ),
    "GPU-limit-at-the-wrong-level-in-the-overlays-patch": (
        "overlays/gpu/gpu-deployment.yaml",
        "      nvidia.com/gpu: 1",
        "    nvidia.com/gpu: 1",
        "containers.0.resources: Additional properties are not allowed ('nvidia.com/gpu'",
    ),
    "ServiceMonitor-without-endpoints": (
        "components/servicemonitor/servicemonitor.yaml",
        "  endpoints:",
        "  endpoint:",
        "ServiceMonitor/gad: spec: unknown keys ['endpoint']",
    ),
}


@pytest.mark.parametrize("case", PLANTED)
def test_planted_error_fails_validation(case: str, tmp_path: Path, kubernetes_validate) -> None:
    path, old, new, expected = PLANTED[case]
    tree = copy_k8s(tmp_path)
    target = tree / path
    text = target.read_text()
    assert text.count(old) == 1, f"{path} no longer holds {old!r}: update the planted case"
    target.write_text(text.replace(old, new))
    errors = validate_all(kubernetes_validate, render(tree / "overlays" / "gpu-monitoring"))
    assert any(expected in error for error in errors), errors


def test_strict_is_what_catches_unknown_fields(rendered: dict, kubernetes_validate) -> None:
    docs = copy.deepcopy(rendered["base"])
    find(docs, "Deployment", "gad")["spec"]["replica"] = 2
    assert validate_all(kubernetes_validate, docs, strict=False) == []
    assert validate_all(kubernetes_validate, docs, strict=True) != []


def test_a_kind_without_schema_is_an_error(rendered: dict, kubernetes_validate) -> None:
    docs = [{"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}]
    (error,) = validate_all(kubernetes_validate, docs)
    assert "add its hand check to CRDS" in error


def test_command_line_validator(rendered: dict, tmp_path: Path, kubernetes_validate) -> None:
    """The command k8s/README.md gives: exit 0 on the rendering, non-zero on a planted error."""
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump_all(rendered["overlays/gpu"]))
    docs = copy.deepcopy(rendered["overlays/gpu"])
    container(docs)["ports"][0]["containerPort"] = "eighty"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all(docs))
    command = [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet"]
    command += ["-k", KUBERNETES_VERSION]
    ok = subprocess.run([*command, str(good)], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    failed = subprocess.run([*command, str(bad)], capture_output=True, text=True, timeout=120)
    assert failed.returncode != 0
    assert "containerPort" in failed.stdout


# --- 3. meaning ---------------------------------------------------------------------------


def check_probes(docs: list[Doc]) -> None:
    box = container(docs)
    port = int(pod_env(docs)["GAD_PORT"])
    paths = {"readinessProbe": "/readyz", "livenessProbe": "/healthz", "startupProbe": "/healthz"}
    for probe, path in paths.items():
        get = box[probe]["httpGet"]
        assert get["path"] == path, f"{probe} must GET {path}, not {get['path']}"
        assert container_port(box, get["port"]) == port, f"{probe} must use port {port}"


def check_security(docs: list[Doc]) -> None:
    for name in ("gad", "gad-redis"):
        pod = pod_spec(docs, name)
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] > 0, (
            f"{name}: runAsNonRoot with a non-zero uid"
        )
        assert context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for box in pod["containers"] + pod.get("initContainers", []):
            box_context = box["securityContext"]
            assert box_context["allowPrivilegeEscalation"] is False, box["name"]
            assert box_context["readOnlyRootFilesystem"] is True, box["name"]
            assert box_context["capabilities"]["drop"] == ["ALL"], box["name"]
            assert "runAsUser" not in box_context or box_context["runAsUser"] > 0
    assert pod_spec(docs)["securityContext"]["runAsUser"] == 10001  # the image's user
    mounts = {m["mountPath"]: m["name"] for m in container(docs)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "a read-only root needs a writable /tmp"


def check_shutdown(docs: list[Doc]) -> None:
    deployment = find(docs, "Deployment", "gad")
    pod = pod_spec(docs)
    sleep = container(docs)["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert sleep >= 5, "preStop must outlast the endpoint removal"
    assert pod["terminationGracePeriodSeconds"] >= sleep + UVICORN_GRACE_S, (
        "grace period shorter than preStop + uvicorn's close: streams would be killed"
    )
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert pod["enableServiceLinks"] is False, "the Service gad would set GAD_PORT=tcp://…"


def check_service(docs: list[Doc]) -> None:
    service = find(docs, "Service", "gad")
    assert matches(service["spec"]["selector"], pod_labels(docs, "gad"))
    assert not matches(service["spec"]["selector"], pod_labels(docs, "gad-redis"))
    (port,) = service["spec"]["ports"]
    assert port["port"] == 80
    assert container_port(container(docs), port["targetPort"]) == 8000
    assert service["spec"].get("sessionAffinity", "None") == "None"


def check_autoscaling(docs: list[Doc]) -> None:
    deployment = find(docs, "Deployment", "gad")
    (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    target = hpa["spec"]["scaleTargetRef"]
    expected = ("apps/v1", "Deployment", deployment["metadata"]["name"])
    assert (target["apiVersion"], target["kind"], target["name"]) == expected, (
        f"the HPA's scaleTargetRef must be the gad Deployment, not {target}"
    )
    assert hpa["spec"]["minReplicas"] >= 2
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    max_streams = int(pod_env(docs)["GAD_MAX_STREAMS"])
    for metric in hpa["spec"]["metrics"]:
        if metric["type"] == "Pods":
            assert metric["pods"]["metric"]["name"] == "gad_active_streams"
            average = float(metric["pods"]["target"]["averageValue"])
            assert average < max_streams, (
                f"HPA target {average} streams per pod must stay below GAD_MAX_STREAMS "
                f"{max_streams}, or pods refuse streams (1013) before the HPA adds any"
            )
    (pdb,) = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert matches(selector, pod_labels(docs, "gad")), "the PDB must select the gad pods"
    assert not matches(selector, pod_labels(docs, "gad-redis"))


def check_redis_policy(docs: list[Doc]) -> None:
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    spec = policy["spec"]
    assert matches(spec["podSelector"]["matchLabels"], pod_labels(docs, "gad-redis"))
    assert not matches(spec["podSelector"]["matchLabels"], pod_labels(docs, "gad"))
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    assert rule.get("from"), "an ingress rule without `from` admits every pod"
    # The gad pods, and the trainer where the teach component runs one (its job queue).
    allowed = {"gad"} | {
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "Deployment" and d["metadata"]["name"] == "gad-trainer"
    }
    seen = set()
    for peer in rule["from"]:
        assert set(peer) == {"podSelector"}, f"only gad pods of this namespace, not {peer}"
        selector = peer["podSelector"].get("matchLabels")
        app = (selector or {}).get("app")
        assert selector == {"app": app} and app in allowed, (
            f"only app=gad may reach Redis (and gad-trainer with teach), not {selector}"
        )
        assert matches(selector, pod_labels(docs, app))
        seen.add(app)
    assert seen == allowed
    redis_port = container(docs, "redis", deployment="gad-redis")["ports"][0]["containerPort"]
    assert [p["port"] for p in rule["ports"]] == [redis_port]


def check_redis(docs: list[Doc]) -> None:
    box = container(docs, "redis", deployment="gad-redis")
    name, tag = split_image(box["image"])
    assert name == "redis" and tag.startswith(":7.") and tag.count(".") == 2, box["image"]
    args = box["args"]
    option = {args[i]: args[i + 1] for i in range(len(args) - 1) if args[i].startswith("--")}
    assert option["--maxmemory-policy"] == "volatile-ttl"
    assert option["--maxmemory"] and option["--save"] == "" and option["--appendonly"] == "no"
    url = pod_env(docs)["GAD_REDIS_URL"]
    service = find(docs, "Service", "gad-redis")
    assert url == f"redis://gad-redis:{service['spec']['ports'][0]['port']}/0"


def check_settings(docs: list[Doc], monkeypatch: pytest.MonkeyPatch) -> None:
    """Every GAD_* variable is a setting, and service.settings parses the pod's environment."""
    env = pod_env(docs)
    fields = {f"GAD_{name.upper()}" for name in Settings.model_fields}
    unknown = sorted(k for k in env if k.startswith("GAD_") and k not in fields)
    assert not unknown, f"not settings (service/settings.py ignores them): {unknown}"
    for key in [k for k in os.environ if k.startswith("GAD_")]:
        monkeypatch.delenv(key)
    with monkeypatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        settings = Settings()
    assert settings.host == "0.0.0.0" and settings.port == 8000
    assert settings.auth_enabled, "GAD_API_KEYS must come from the Secret"
    assert not settings.auth_health and not settings.auth_metrics, "probes and scrapes"
    (init,) = pod_spec(docs)["initContainers"]
    image, tag = split_image(init["image"])
    mounts = {m["mountPath"]: m for m in container(docs)["volumeMounts"]}
    if "/data" in mounts:  # the teach component: the model folder on the shared volume
        assert init["volumeMounts"][0]["mountPath"] == "/mnt/data"
        assert init["volumeMounts"][0]["name"] == mounts["/data"]["name"]
        assert "cp -Rn /models/. /mnt/data/models/" in init["command"][-1]  # keeps versions
        assert settings.model == Path("/data/models") / image.rsplit("/", 1)[1]  # the folder
        assert settings.model_watch_s > 0 and settings.data_dir.is_relative_to("/data")
        trainer = container(docs, "trainer", deployment="gad-trainer")
        assert trainer["args"][:3] == ["worker", "--queue", settings.train_queue]
        assert settings.train_queue and settings.train_queue.startswith("redis://gad-redis:")
        shared = {m["mountPath"]: m["name"] for m in trainer["volumeMounts"]}
        claims = {
            v["name"]: v.get("persistentVolumeClaim", {}).get("claimName")
            for spec in (pod_spec(docs), pod_spec(docs, "gad-trainer"))
            for v in spec["volumes"]
        }
        assert claims[shared["/data"]] == claims[mounts["/data"]["name"]] == "gad-data"
        (claim,) = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
        assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # every pod mounts it
        return
    # The model package: /models/NAME/VERSION, copied there from the image NAME:VERSION.
    assert settings.model == Path("/models") / image.rsplit("/", 1)[1] / tag.lstrip(":")
    assert mounts["/models"]["readOnly"] is True
    assert mounts["/models"]["name"] == init["volumeMounts"][0]["name"]


def check_scraping(docs: list[Doc]) -> None:
    annotations = find(docs, "Deployment", "gad")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == container(docs)["ports"][0]["containerPort"]
    assert annotations["prometheus.io/path"] == "/metrics"
    for monitor in [d for d in docs if d["kind"] == "ServiceMonitor"]:
        service = find(docs, "Service", "gad")
        assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
        assert not matches(
            monitor["spec"]["selector"]["matchLabels"],
            find(docs, "Service", "gad-redis")["metadata"]["labels"],
        )
        ports = {p["name"] for p in service["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports and endpoint["path"] == "/metrics"


def check_hardware(docs: list[Doc], *, gpu: bool) -> None:
    box = container(docs)
    limits, requests = box["resources"]["limits"], box["resources"]["requests"]
    assert {"cpu", "memory"} <= set(limits) and {"cpu", "memory"} <= set(requests)
    providers = pod_env(docs)["GAD_PROVIDERS"].split(",")
    name, tag = split_image(box["image"])
    assert name == SERVE_IMAGE and tag.startswith(":"), box["image"]
    if gpu:
        assert limits.get("nvidia.com/gpu") == 1, "one GPU per pod"
        assert providers[0] == "cuda", providers
        tolerations = pod_spec(docs).get("tolerations", [])
        assert any(t["key"] == "nvidia.com/gpu" for t in tolerations)
        assert tag.endswith("-cuda")
    else:
        assert "nvidia.com/gpu" not in limits and providers == ["cpu"]
        assert tag.endswith("-cpu")


def check_namespace(docs: list[Doc], *, namespace: str | None) -> None:
    assert {d["metadata"].get("namespace") for d in docs} == {namespace}
    for doc in docs:
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "gad-stream"


def check_all(name: str, docs: list[Doc], monkeypatch: pytest.MonkeyPatch) -> None:
    check_probes(docs)
    check_security(docs)
    check_shutdown(docs)
    check_service(docs)
    check_autoscaling(docs)
    check_redis_policy(docs)
    check_redis(docs)
    check_settings(docs, monkeypatch)
    check_scraping(docs)
    check_hardware(docs, gpu=name in GPU)
    check_namespace(docs, namespace=None if name == "base" else NAMESPACE)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_manifests_fit_the_service(
    name: str, rendered: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_all(name, rendered[name], monkeypatch)


def test_the_gateway_overlay_streams_its_cameras_to_the_service(
    rendered: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """overlays/cpu-gateway: one `gad gateway` pod (never two on the same cameras), its
    config a valid gateway file pointing at the gad Service, its key from the Secret, its
    /healthz probe and metrics port the config's `listen`, locked down like the server."""
    from service.gateway.config import parse_config

    docs = rendered["overlays/cpu-gateway"]
    deployment = find(docs, "Deployment", "gad-gateway")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = pod_spec(docs, "gad-gateway")
    (box,) = pod["containers"]
    assert box["image"] == container(docs)["image"]  # the serving image, no model needed
    assert box["command"] == ["gad", "gateway", "/etc/gad/gateway.yaml"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in box["volumeMounts"]}
    config_map = find(docs, "ConfigMap", volumes[mounts["/etc/gad"]["name"]]["configMap"]["name"])
    (key_ref,) = [e["valueFrom"]["secretKeyRef"] for e in box["env"] if e["name"] == "GAD_TOKEN"]
    secret = find(docs, "Secret", key_ref["name"])  # the generated (hashed) name
    monkeypatch.setenv("GAD_TOKEN", base64.b64decode(secret["data"][key_ref["key"]]).decode())
    config = parse_config(yaml.safe_load(config_map["data"]["gateway.yaml"]), origin="k8s")
    service = find(docs, "Service", "gad")
    (port,) = [p["port"] for p in service["spec"]["ports"] if p["name"] == "http"]
    assert {c.url.rsplit("/v1/streams/", 1)[0] for c in config.cameras} == {f"ws://gad:{port}"}
    assert config.listen_port == container_port(box, box["livenessProbe"]["httpGet"]["port"])
    assert box["livenessProbe"]["httpGet"]["path"] == "/healthz"
    gateway_service = find(docs, "Service", "gad-gateway")
    assert matches(gateway_service["spec"]["selector"], pod_labels(docs, "gad-gateway"))
    assert not matches(service["spec"]["selector"], pod_labels(docs, "gad-gateway"))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    assert box["securityContext"]["readOnlyRootFilesystem"] is True
    assert box["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"cpu", "memory"} <= set(box["resources"]["limits"])


def test_monitoring_overlay_scales_on_streams(rendered: dict) -> None:
    docs = rendered["overlays/gpu-monitoring"]
    (hpa,) = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Pods"]
    assert [d["kind"] for d in docs].count("ServiceMonitor") == 1
    (cpu_hpa,) = [d for d in rendered["overlays/gpu"] if d["kind"] == "HorizontalPodAutoscaler"]
    assert cpu_hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"  # the default


def _mutate(docs: list[Doc], path: tuple, value: Any) -> list[Doc]:
    docs = copy.deepcopy(docs)
    kind, name, *keys = path
    node: Any = find(docs, kind, name) if kind != "container" else container(docs, name)
    for key in keys[:-1]:
        node = node[key]
    if value is None:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return docs


PLANTED_MEANING = {
    "readiness-on-healthz": (
        ("container", "gad", "readinessProbe", "httpGet", "path"),
        "/healthz",
        "readinessProbe must GET /readyz",
    ),
    "liveness-on-another-port": (
        ("container", "gad", "livenessProbe", "httpGet", "port"),
        9000,
        "livenessProbe must use port 8000",
    ),
    "Redis-open-to-every-pod": (
        ("NetworkPolicy", "gad-redis", "spec", "ingress", 0, "from"),
        None,
        "admits every pod",
    ),
    "Redis-open-to-the-namespace": (
        ("NetworkPolicy", "gad-redis", "spec", "ingress", 0, "from", 0, "podSelector"),
        {"matchLabels": {}},
        "only app=gad may reach Redis",
    ),
    "PDB-on-the-Redis-pods": (
        ("PodDisruptionBudget", "gad", "spec", "selector", "matchLabels"),
        {"app": "gad-redis"},
        "the PDB must select the gad pods",
    ),
    "HPA-on-another-Deployment": (
        ("HorizontalPodAutoscaler", "gad", "spec", "scaleTargetRef", "name"),
        "gad-redis",
        "scaleTargetRef must be the gad Deployment",
    ),
    "root-user": (
        ("Deployment", "gad", "spec", "template", "spec", "securityContext", "runAsUser"),
        0,
        "runAsNonRoot with a non-zero uid",
    ),
    "no-GPU": (
        ("container", "gad", "resources", "limits", "nvidia.com/gpu"),
        None,
        "one GPU per pod",
    ),
    "grace-period-too-short": (
        ("Deployment", "gad", "spec", "template", "spec", "terminationGracePeriodSeconds"),
        15,
        "grace period shorter",
    ),
}


@pytest.mark.parametrize("case", PLANTED_MEANING)
def test_checks_catch_planted_errors(
    case: str, rendered: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, value, message = PLANTED_MEANING[case]
    docs = _mutate(rendered["overlays/gpu"], path, value)
    with pytest.raises((AssertionError, KeyError), match=message):
        check_all("overlays/gpu", docs, monkeypatch)


def test_settings_check_catches_a_misspelt_variable(
    rendered: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    docs = copy.deepcopy(rendered["overlays/gpu"])
    (config,) = [d for d in docs if d["kind"] == "ConfigMap"]
    config["data"]["GAD_MAX_STREAM"] = "8"
    with pytest.raises(AssertionError, match="GAD_MAX_STREAM"):
        check_settings(docs, monkeypatch)
