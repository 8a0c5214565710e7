"""The HTTP client of the examples routes, for `gad teach` (torch-free, the serving image
has it). Every failure is one `TeachError` line with a hint, never a traceback: no server,
a refused key, a refusal of the service (its `detail`), a bad annotations file.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from runtime.errors import GADError

DEFAULT_SERVER = "http://127.0.0.1:8000"
KEY_HINT = "pass the service's API key with --key KEY or GAD_TOKEN (GAD_API_KEYS on the server)"
CSV_COLUMNS = ("clip", "label", "start", "end")
TIMEOUT_S = 600.0  # a long clip is decoded and encoded before the answer


class TeachError(GADError):
    """A `gad teach` request that failed; the message says why and what to do."""


@dataclass(frozen=True)
class Annotation:
    clip: Path
    label: str
    start: str
    end: str


class ExamplesClient:
    def __init__(self, server: str = DEFAULT_SERVER, key: str | None = None) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
        self.server = server.rstrip("/")
        headers = {"authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=TIMEOUT_S)

    def __enter__(self) -> ExamplesClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def add(
        self, clip: Path, label: str, start: str | None = None, end: str | None = None
    ) -> dict[str, Any]:
        """POST /v1/examples: the clip's bytes, the label and its time in the query."""
        if not clip.is_file():
            raise TeachError(f"clip {clip} not found")
        params = {"label": label, "name": clip.name}
        params |= {k: v for k, v in (("start", start), ("end", end)) if v not in (None, "")}
        with clip.open("rb") as body:
            headers = {"content-type": "application/octet-stream"}
            return self._call("POST", "/v1/examples", params=params, content=body, headers=headers)

    def list(self) -> dict[str, Any]:
        return self._call("GET", "/v1/examples")

    def remove(self, example: str) -> dict[str, Any]:
        return self._call("DELETE", f"/v1/examples/{example}")

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = self._http.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise TeachError(
                f"cannot connect to {self.server} ({exc}); hint: is the server running? "
                "start it with `gad serve` (make run), or fix --server"
            ) from None
        except httpx.TimeoutException:
            raise TeachError(f"no answer from {self.server} in {TIMEOUT_S:g} s") from None
        except httpx.HTTPError as exc:
            raise TeachError(f"{self.server}: {type(exc).__name__}: {exc}") from None
        try:
            data = answer.json()
        except ValueError:
            data = None
        if answer.status_code == 401:
            raise TeachError(f"{self.server} refused the API key (HTTP 401); hint: {KEY_HINT}")
        if answer.status_code == 404 and not (isinstance(data, dict) and "detail" in data):
            raise TeachError(f"{self.server} has no {path} (HTTP 404): is it a GAD Stream service?")
        if answer.is_error:
            detail = data.get("detail") if isinstance(data, dict) else answer.text[:200]
            raise TeachError(f"{self.server} refused it (HTTP {answer.status_code}): {detail}")
        if not isinstance(data, dict):
            raise TeachError(f"{self.server} answered {path} with no JSON object")
        return data


def read_annotations(path: Path) -> list[Annotation]:
    """A CSV with the header `clip,label,start,end` (start and end may be empty: the whole
    clip); a clip path is relative to the CSV's folder."""
    try:
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            header = [c.strip() for c in reader.fieldnames or []]
            if missing := [c for c in CSV_COLUMNS if c not in header]:
                raise TeachError(
                    f"{path}: header is {header}, needs columns {list(CSV_COLUMNS)} "
                    f"(missing {missing})"
                )
            reader.fieldnames = header
            rows = [row for row in reader if any((v or "").strip() for v in row.values())]
    except OSError as exc:
        raise TeachError(f"annotations {path}: {exc.strerror or exc}") from None
    out = []
    for line, row in enumerate(rows, start=2):
        clip, label = (row["clip"] or "").strip(), (row["label"] or "").strip()
        if not clip or not label:
            raise TeachError(f"{path}:{line}: empty clip or label")
        where = Path(clip) if Path(clip).is_absolute() else path.parent / clip
        out.append(
            Annotation(where, label, (row["start"] or "").strip(), (row["end"] or "").strip())
        )
    if not out:
        raise TeachError(f"{path} holds no rows")
    return out
