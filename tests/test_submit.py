"""``make submit``: the kaggle CLI is called with the exact arguments, and every refusal holds.

A fake ``kaggle`` executable placed first on PATH records its arguments; nothing leaves the machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from simpsons_lib.config import files as io_utils
from simpsons_lib.pipeline import kaggle as kaggle_download
from simpsons_lib.config.paths import StudyPaths

CLASSES = ["bart_simpson", "homer_simpson", "lisa_simpson"]
IDS = ["img0.jpg", "img1.jpg", "img2.jpg", "img10.jpg"]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def fake_kaggle(tmp_path, monkeypatch):
    """A ``kaggle`` first on PATH that writes its arguments, one a line, to the returned file (and exits
    with $FAKE_KAGGLE_EXIT), and credentials in the environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    args_file = tmp_path / "kaggle_args.txt"
    script = bin_dir / "kaggle"
    script.write_text(f"#!{sys.executable}\nimport os, sys\n"
                      f"open({str(args_file)!r}, 'w').write(''.join(a + '\\n' for a in sys.argv[1:]))\n"
                      "sys.exit(int(os.environ.get('FAKE_KAGGLE_EXIT', '0')))\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KAGGLE_API_TOKEN", "fake-token")
    return args_file


@pytest.fixture
def study(tmp_path):
    """What `make all` leaves for profile full: the run's metrics and manifest, the Kaggle data's
    sample submission, submission.csv (newer than the metrics) and its record."""
    kaggle = Path(os.environ["SIMPSONS_DATA_DIR"]) / "kaggle"
    (kaggle / "train" / "simpsons_dataset" / "bart_simpson").mkdir(parents=True)
    pd.DataFrame({"Id": IDS, "Expected": "bart_simpson"}).to_csv(kaggle / "sample_submission.csv", index=False)
    run = StudyPaths("full").run("resnet50").make_dirs()
    io_utils.write_json(run.metrics_json, {"run": "resnet50", "micro_f1": 0.95, "classes": CLASSES})
    io_utils.write_json(run.manifest, {"run": "resnet50", "git": {"commit": COMMIT, "dirty": False},
                                                          "data": {"demo": False}})
    csv, record = kaggle_download.submission_files("full")
    write_submission(csv, IDS, ["homer_simpson", "bart_simpson", "lisa_simpson", "bart_simpson"])
    io_utils.write_json(record, {"run": "resnet50", "path": str(csv), "rows": 4, "score": None})
    later = run.metrics_json.stat().st_mtime + 5
    os.utime(csv, (later, later))
    return csv, record


def write_submission(path: Path, ids, expected) -> None:
    io_utils.write_csv(path, pd.DataFrame({"Id": ids, "Expected": expected}))


def test_submit_calls_the_kaggle_cli_with_the_exact_arguments(fake_kaggle, study, capsys):
    csv, _ = study
    kaggle_download.main(["submit", "--profile", "full"])
    assert fake_kaggle.read_text().splitlines() == [
        "competitions", "submit", "-c", "journey-springfield", "-f", str(csv), "-m", "resnet50 0123456789ab"]
    assert "Submitted" in capsys.readouterr().out


def test_submit_message_and_competition_can_be_given(fake_kaggle, study):
    csv, record = study
    sent = kaggle_download.submit(csv, record, message="my try", competition="other-comp")
    assert sent == "my try"
    assert fake_kaggle.read_text().splitlines()[2:] == ["-c", "other-comp", "-f", str(csv), "-m", "my try"]


def test_dirty_checkout_is_in_the_message(fake_kaggle, study):
    csv, record = study
    manifest = StudyPaths("full").run("resnet50").manifest
    io_utils.write_json(manifest, {"git": {"commit": COMMIT, "dirty": True}})
    assert kaggle_download.submit(csv, record) == "resnet50 0123456789ab-dirty"


def refused(match: str, args_file: Path, *call) -> str:
    with pytest.raises(SystemExit, match=match) as info:
        kaggle_download.submit(*call)
    assert not args_file.exists(), "the kaggle CLI must not be called"
    return str(info.value)


def test_demo_data_submission_is_refused(fake_kaggle, study):
    csv, record = study
    io_utils.write_json(record, {"run": "resnet50", "rows": 4, "score": None, "demo": True})
    refused("drawn demo data", fake_kaggle, csv, record)


def test_stale_submission_is_refused(fake_kaggle, study):
    csv, record = study
    metrics = StudyPaths("full").run("resnet50").metrics_json
    earlier = metrics.stat().st_mtime - 60  # the run was trained again after the submission was written
    os.utime(csv, (earlier, earlier))
    message = refused("stale", fake_kaggle, csv, record)
    assert str(metrics) in message


@pytest.mark.parametrize("ids,expected,match", [
    (IDS[:3], ["bart_simpson"] * 3, "1 Id\\(s\\) missing, e.g. img10.jpg"),
    (IDS + ["img99.jpg"], ["bart_simpson"] * 5, "not in the sample submission"),
    (IDS, ["bart_simpson", "bart_simpson", "krusty_the_clown", "bart_simpson"], "unknown class name.*krusty"),
])
def test_submission_failing_the_check_is_refused(fake_kaggle, study, ids, expected, match):
    csv, record = study
    mtime = csv.stat().st_mtime
    write_submission(csv, ids, expected)
    os.utime(csv, (mtime, mtime))
    refused(match, fake_kaggle, csv, record)


def test_missing_files_are_refused_naming_them(fake_kaggle, study):
    csv, record = study
    csv.unlink()
    refused("submission.csv does not exist", fake_kaggle, csv, record)


def test_missing_credentials_are_refused_with_the_token_instructions(fake_kaggle, study, tmp_path, monkeypatch):
    csv, record = study
    for var in ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "home" / ".config"))
    message = refused("No Kaggle API token found", fake_kaggle, csv, record)
    assert message == kaggle_download.NO_TOKEN_SUBMIT
    assert "kaggle auth login" in message and "make submit" in message


def test_a_failing_kaggle_cli_is_reported(fake_kaggle, study, monkeypatch):
    csv, record = study
    monkeypatch.setenv("FAKE_KAGGLE_EXIT", "1")
    with pytest.raises(SystemExit, match="failed \\(exit 1\\)"):
        kaggle_download.submit(csv, record)
    assert fake_kaggle.exists()


@pytest.mark.parametrize("content,match", [(b"", "the file is empty"), (b"Id,Expected\n\"img0.jpg,x\n", "not a readable CSV"),
                                           (b"\xff\xfe\x00garbage", "not a readable CSV")])
def test_an_empty_or_unreadable_submission_is_refused_in_one_line(fake_kaggle, study, content, match):
    csv, record = study
    mtime = csv.stat().st_mtime
    csv.write_bytes(content)
    os.utime(csv, (mtime, mtime))
    refused(match, fake_kaggle, csv, record)
