"""`gad teach`: add examples of your own actions to a running service, list and remove them
(service/examples/client.py over the service's /v1/examples routes; docs/teach.md).

    gad teach add clip.mp4 --label wave --start 1.5 --end 4
    gad teach add --annotations examples.csv        # columns clip,label,start,end
    gad teach list
    gad teach remove 3f9c2a7b10de

`--server URL` (default http://127.0.0.1:8000) and `--key KEY` (or GAD_TOKEN) as `gad
stream` takes them. Failures are one line with a hint (exit status 2), never a traceback.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from gad.subcommands import Subcommands, add_group


def register(commands: Subcommands) -> None:
    commands.add(
        "teach",
        build,
        help="add examples of your own actions to a running service; list, remove them",
        description="Examples for a new model version: each clip is encoded by the served "
        "model's encoder and kept per API key (docs/teach.md).",
    )


def build(teach: argparse.ArgumentParser) -> None:
    verbs = add_group(teach)
    verbs.add("add", _build_add, help="add a clip (or a CSV of clips) as examples")
    verbs.add("list", _build_list, help="the examples kept, per label")
    verbs.add("remove", _build_remove, help="delete an example by id")


def _common(parser: argparse.ArgumentParser) -> None:
    from service.examples.client import DEFAULT_SERVER

    parser.add_argument("--server", default=DEFAULT_SERVER, help=f"service URL ({DEFAULT_SERVER})")
    parser.add_argument("--key", help="API key (or GAD_TOKEN)")


def _build_add(add: argparse.ArgumentParser) -> None:
    add.add_argument("clip", nargs="?", type=Path, help="a video file")
    add.add_argument("--label", help="the action's name ('background': no action)")
    add.add_argument("--start", help="seconds into the clip where the action starts")
    add.add_argument("--end", help="seconds where it ends (frames outside: background)")
    add.add_argument(
        "--annotations", type=Path, help="CSV with columns clip,label,start,end (one per row)"
    )
    _common(add)
    add.set_defaults(handler=run_add)


def _build_list(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.set_defaults(handler=run_list)


def _build_remove(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("id", help="the example's id (gad teach list)")
    _common(parser)
    parser.set_defaults(handler=run_remove)


def _client(args: argparse.Namespace) -> Any:
    from service.examples.client import ExamplesClient

    return ExamplesClient(args.server, args.key or os.environ.get("GAD_TOKEN"))


def run_add(args: argparse.Namespace) -> int:
    from service.examples.client import Annotation, TeachError, read_annotations

    if args.annotations is not None:
        if args.clip is not None or args.label or args.start or args.end:
            raise TeachError("give a CLIP with --label, or --annotations CSV, not both")
        todo = read_annotations(args.annotations)
    elif args.clip is None or not args.label:
        raise TeachError("give a CLIP and --label L (or --annotations CSV)")
    else:
        todo = [Annotation(args.clip, args.label, args.start or "", args.end or "")]
    for item in todo:  # all there before the first is sent
        if not item.clip.is_file():
            raise TeachError(f"clip {item.clip} not found")
    with _client(args) as client:
        for item in todo:
            example = client.add(item.clip, item.label, item.start, item.end)
            print(_line(example, item.clip.name))
    return 0


def run_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        summary = client.list()
    model = summary["model"]
    print(
        f"{summary['examples']} examples for {model['name']} v{model['version']} "
        f"({summary['seconds']:g} s at {summary['fps']:g} fps)"
    )
    for label, entry in summary["labels"].items():
        print(
            f"  {label:<24} {entry['count']:>3} example{'s' if entry['count'] != 1 else ' '}"
            f" {entry['seconds']:>8.2f} s  " + " ".join(entry["ids"])
        )
    return 0


def run_remove(args: argparse.Namespace) -> int:
    with _client(args) as client:
        removed = client.remove(args.id)
    print(f"removed {removed['deleted']} ({', '.join(removed['labels'])}, {removed['rows']} rows)")
    return 0


def _line(example: dict[str, Any], name: str) -> str:
    runs = ", ".join(
        f"{run['label']} {run['start']:g}-{run['end']:g} s" for run in example["segments"]
    )
    person = example.get("person_rows")
    seen = "" if person is None else f", a person in {person}/{example['rows']} frames"
    return f"added {example['id']}  {name}: {example['rows']} frames ({runs}){seen}"
