import subprocess
import sys
from pathlib import Path

import pytest

from gad.cli import main
from model.checkpoint import save_checkpoint
from tests.model.helpers import tiny_model


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_help_does_not_import_torch() -> None:
    result = run_python(
        "import sys\n"
        "from gad.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout
    for command in ("info", "bench", "train", "eval", "data"):
        assert command in result.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["info", "--help"],
        ["bench", "--help"],
        ["bench", "forward", "--help"],
        ["bench", "compare", "--help"],
        ["data", "synth", "--help"],
        ["train", "--help"],
        ["eval", "--help"],
        ["data", "render", "--help"],
        ["data", "extract", "--help"],
        ["data", "mocap", "--help"],
        ["export", "--help"],
        ["demo", "build", "--help"],
        ["serve", "--help"],
        ["stream", "--help"],
        ["bench", "encoder", "--help"],
        ["bench", "engine", "--help"],
        ["bench", "clip", "--help"],
        ["bench", "service", "--help"],
        ["bench", "load", "--help"],
        ["bench", "soak", "--help"],
        ["bench", "delivery", "--help"],
    ],
)
def test_every_command_has_help(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage: gad" in capsys.readouterr().out


def test_serving_commands_parse_without_the_training_install() -> None:
    """Only the verb that runs is built: `gad serve` and `gad bench service` never reach for
    model/ or training/, and a training verb says what is missing in one line."""
    result = run_python(
        "import sys\n"
        "for name in ('torch', 'model', 'training'):\n"
        "    sys.modules[name] = None\n"
        "from gad.cli import main\n"
        "for argv in (['serve', '--help'], ['bench', 'service', '--help']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as exc:\n"
        "        print('HELP', exc.code)\n"
        "print('TRAIN', main(['train', 'data', '--out', 'runs/x']))\n"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("HELP 0") == 2
    assert "TRAIN 2" in result.stdout
    assert result.stderr.startswith(
        "gad train: error: needs the training install (pip install 'gad-stream[train]'); "
        "this looks like the serving image (no module named 'model"
    )
    assert len(result.stderr.splitlines()) == 1


def test_info_prints_what_the_checkpoint_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    save_checkpoint(tiny_model("gad"), tmp_path / "ckpt", extra={"note": "demo"})
    assert main(["info", str(tmp_path / "ckpt")]) == 0
    out = capsys.readouterr().out
    assert "gad — [CLS] head at inference" in out
    assert "tiny (llama, hidden 64, 2 layers" in out
    assert "6: background*, open drawer" in out
    assert "r=8 α=16" in out and "lm_head" in out
    assert 'extra.note   "demo"' in out


def test_info_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    save_checkpoint(tiny_model("discriminative"), tmp_path / "ckpt")
    assert main(["info", "--json", str(tmp_path / "ckpt")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"]["kind"] == "discriminative"


def test_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gad info: error: checkpoint") and "Traceback" not in err


@pytest.mark.integration
def test_bench_forward_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_file = tmp_path / "forward.md"
    argv = [
        "bench",
        "forward",
        "--backbone",
        "tiny",
        "--long",
        "4",
        "--short",
        "4",
        "--feature-dim",
        "16",
        "--repeats",
        "2",
        "--out",
        str(out_file),
    ]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "| tiny | 64 × 2 |" in table
    assert out_file.read_text().strip() == table.strip()
