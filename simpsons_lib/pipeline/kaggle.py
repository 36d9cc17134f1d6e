"""``make data``: download journey-springfield with the kaggle CLI into ``data/kaggle`` and unpack it;
``make submit``: send a profile's ``submission.csv`` to the competition.

    python -m simpsons_lib.pipeline.kaggle            # download + unpack + check the layout
    python -m simpsons_lib.pipeline.kaggle --zip FILE # unpack a zip you already have
    python -m simpsons_lib.pipeline.kaggle submit --profile full [--message TEXT]

The zip is kept; unpacking refuses paths that would land outside the target folder. A submission is
refused when it was made from the drawn demo data, is older than its run's metrics, fails
``submission.check_submission``, or no Kaggle credentials are found.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from typing import TYPE_CHECKING

from ..config import paths
from ..config.files import read_json

if TYPE_CHECKING:
    from ..data.layout import DatasetLayout

# The data module (numpy, pandas, PIL) is imported where a layout is found: `make data` checks the
# credentials with the system's Python, before the environment (and its torch) is installed.

COMPETITION = paths.KAGGLE_COMPETITION

CREDENTIAL_STEPS = """  1. Sign in at kaggle.com, open https://www.kaggle.com/c/journey-springfield and accept its rules.
  2. Give the kaggle CLI your credentials, one of:
     - `make setup`, then `.venv/bin/kaggle auth login` (signs in through the browser, caches the credentials);
     - kaggle.com/settings -> API -> "Generate New Token", then `export KAGGLE_API_TOKEN=<token>`
       or save it as ~/.kaggle/access_token;
     - a legacy kaggle.json: mkdir -p ~/.kaggle && mv kaggle.json ~/.kaggle/ && chmod 600 ~/.kaggle/kaggle.json
       (or set KAGGLE_USERNAME and KAGGLE_KEY).
"""

NO_TOKEN = """No Kaggle API token found. To download the competition data:
""" + CREDENTIAL_STEPS + """  3. Run `make data` again.
Or put journey-springfield.zip in {out} yourself and run `make data` (it is unpacked, not downloaded again).
Without the real data, `make demo` runs the whole study on drawn demo data."""


CREDENTIAL_FILES = ("kaggle.json", "access_token", "credentials.json")  # API key, API token, `kaggle auth login`


def has_token(env: dict | None = None, home: Path | None = None) -> bool:
    """Whether the kaggle CLI will find credentials: variables, or a credentials file in its config
    folder (KAGGLE_CONFIG_DIR, ~/.kaggle, or on Linux $XDG_CONFIG_HOME/kaggle)."""
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    if (env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY")) or env.get("KAGGLE_API_TOKEN"):
        return True
    folders = [Path(env["KAGGLE_CONFIG_DIR"])] if env.get("KAGGLE_CONFIG_DIR") else []
    folders += [home / ".kaggle", Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"]
    return any((folder / name).is_file() for folder in folders for name in CREDENTIAL_FILES)


class UnpackError(ValueError):
    """A zip that is not unpacked; the message is one line naming the zip and the reason."""


# The real zip is about 0.5 GB of JPEGs (they hardly compress). A zip that would unpack to more than
# MAX_UNPACKED_BYTES (SIMPSONS_UNZIP_MAX_BYTES overrides), hold more than MAX_ENTRIES files, or inflate a
# member of over a MiB more than MAX_RATIO times (a zip bomb of zeros: 1000 times) is refused before
# anything is written.
MAX_UNPACKED_BYTES = 4 * 2**30
MAX_ENTRIES = 200_000
MAX_RATIO = 100


def _limit(max_bytes: int | None) -> int:
    if max_bytes is not None:
        return max_bytes
    text = os.environ.get("SIMPSONS_UNZIP_MAX_BYTES", "")
    try:
        return int(float(text)) if text else MAX_UNPACKED_BYTES
    except ValueError:
        raise UnpackError(f"SIMPSONS_UNZIP_MAX_BYTES must be a number of bytes, got {text[:40]!r}") from None


def _check_members(zip_path: Path, archive: zipfile.ZipFile, root: Path, max_bytes: int) -> None:
    members = archive.infolist()
    if len(members) > MAX_ENTRIES:
        raise UnpackError(f"{zip_path}: {len(members):,} members, more than the {MAX_ENTRIES:,} allowed; not unpacked")
    total = sum(m.file_size for m in members)
    if total > max_bytes:
        raise UnpackError(f"{zip_path}: would unpack to {total / 2**20:,.0f} MiB, more than the {max_bytes / 2**20:,.0f} "
                          "MiB allowed (SIMPSONS_UNZIP_MAX_BYTES raises it); not unpacked")
    for member in members:
        target = (root / member.filename).resolve()
        if not target.is_relative_to(root):
            raise UnpackError(f"{zip_path}: member {member.filename[:200]!r} would be written outside {root}; "
                              "not unpacked")
        if member.file_size > 2**20 and member.file_size > MAX_RATIO * max(member.compress_size, 1):
            raise UnpackError(f"{zip_path}: member {member.filename[:200]!r} inflates {member.compress_size:,} bytes "
                              f"to {member.file_size:,} (more than {MAX_RATIO} times: a zip bomb?); not unpacked")


def _extract(archive: zipfile.ZipFile, root: Path, max_bytes: int) -> None:
    """Every member under ``root``, counting the bytes written (a member larger than it says fails its CRC)."""
    written = 0
    for member in archive.infolist():
        target = root / member.filename
        if member.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(member) as src, open(target, "wb") as dst:
            for block in iter(lambda: src.read(1 << 20), b""):
                written += len(block)
                if written > max_bytes:
                    raise UnpackError(f"unpacked more than the {max_bytes / 2**20:,.0f} MiB allowed")
                dst.write(block)


def unpack(zip_path: str | os.PathLike, out_dir: str | os.PathLike, max_bytes: int | None = None) -> DatasetLayout:
    """Extract ``zip_path`` into ``out_dir`` and return the detected layout.

    Refused (``UnpackError``, one line) before anything is written: a member that would land outside
    ``out_dir`` (zip-slip), more than ``max_bytes`` unpacked (``MAX_UNPACKED_BYTES``), too many members,
    a member that inflates more than ``MAX_RATIO`` times. The zip is unpacked into a temporary folder
    beside the data, checked (a CRC error, no training classes, no test images: refused, the folder
    removed), and only then are its top-level entries renamed into ``out_dir``."""
    import shutil
    import tempfile

    from ..data.layout import DatasetNotFoundError, find_layout

    zip_path, out_dir = Path(zip_path), Path(out_dir)
    max_bytes = _limit(max_bytes)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnpackError(f"{zip_path} is not a valid zip file ({exc}); delete it and run `make data` again") from None
    partial = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=out_dir))
    try:
        with archive:
            _check_members(zip_path, archive, partial.resolve(), max_bytes)
            try:
                _extract(archive, partial, max_bytes)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
                raise UnpackError(f"{zip_path} is damaged ({exc}); delete it and run `make data` again") from None
            except UnpackError as exc:
                raise UnpackError(f"{zip_path}: {exc}; not unpacked") from None
        try:
            found = find_layout(partial)
        except DatasetNotFoundError:
            raise UnpackError(f"{zip_path} holds no training images in class folders (train/simpsons_dataset/"
                              "<class>/...); not unpacked") from None
        if found.test_dir is None:
            raise UnpackError(f"{zip_path} holds no test images (testset/testset/*.jpg); not unpacked: the data "
                              "would not be ready") from None
        old = partial / ".replaced"
        for entry in sorted(p for p in partial.iterdir() if p != old):
            target = out_dir / entry.name
            if target.exists() or target.is_symlink():
                old.mkdir(exist_ok=True)
                os.replace(target, old / entry.name)
            os.replace(entry, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return find_layout(out_dir)


def download(out_dir: str | os.PathLike | None = None, competition: str = COMPETITION) -> DatasetLayout:
    out_dir = Path(out_dir) if out_dir is not None else paths.kaggle_data_dir()
    zip_path = out_dir / f"{competition}.zip"
    if not zip_path.exists():
        if not has_token():
            raise SystemExit(NO_TOKEN.format(out=out_dir))
        cli = kaggle_cli()
        out_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([cli, "competitions", "download", competition, "-p", str(out_dir)])
        if result.returncode != 0 or not zip_path.exists():
            raise SystemExit(f"`kaggle competitions download {competition}` failed (exit {result.returncode}). "
                             f"Check that you accepted the competition's rules at "
                             f"https://www.kaggle.com/c/{competition} and that your token is valid.")
    layout = unpack(zip_path, out_dir)
    print(f"Kaggle data ready: train {layout.train_dir}, test {layout.test_dir}, "
          f"sample submission {layout.sample_submission}")
    return layout


NO_TOKEN_SUBMIT = "No Kaggle API token found. To submit to the competition:\n" + CREDENTIAL_STEPS + \
    "  3. Run `make submit` again."


def kaggle_cli() -> str:
    """The kaggle executable: the first on PATH, else the one next to this Python."""
    cli = shutil.which("kaggle") or str(Path(sys.executable).parent / "kaggle")
    if not Path(cli).exists():
        raise SystemExit("The kaggle CLI is not installed in this environment: run `make setup` first.")
    return cli


def submission_files(profile: str) -> tuple[Path, Path]:
    """A profile's ``submission.csv`` and its record ``metrics/submission.json`` (written by the report)."""
    study = paths.StudyPaths(profile)
    return study.submission_csv, study.submission_json


def _run_commit(profile_dir: Path, run: str) -> str:
    """The git commit the run was made with (its manifest), else this checkout's HEAD; short, with
    ``-dirty`` when the library, notebooks or parameters had uncommitted changes."""
    manifest = profile_dir / "manifests" / f"{run}.json"
    git = read_json(manifest).get("git", {}) if manifest.is_file() else {}
    commit, dirty = git.get("commit"), git.get("dirty", False)
    if not commit:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=paths.PROJECT_ROOT, capture_output=True, text=True)
        commit, dirty = result.stdout.strip() or "unknown", False
    return commit[:12] + ("-dirty" if dirty else "")


def check_submittable(submission_csv: str | os.PathLike, record_json: str | os.PathLike,
                      sample_submission: str | os.PathLike | None = None) -> dict:
    """Refuse (``SystemExit`` with the reason) a submission made from the drawn demo data, one older than
    its run's metrics (``metrics/<run>.json``: the run was trained again since), or one that fails
    ``submission.check_submission`` against the sample submission's Ids and the run's classes.
    Returns the submission record."""
    import pandas as pd

    from ..inference.submission import SubmissionError, check_submission, read_ids

    submission_csv, record_json = Path(submission_csv), Path(record_json)
    for path in (submission_csv, record_json):
        if not path.is_file():
            raise SystemExit(f"Nothing to submit: {path} does not exist; run the study (`make all`) first.")
    record = read_json(record_json)
    run = record.get("run")
    if not run:
        raise SystemExit(f"{record_json} names no run: it is not a submission record of this study")
    if record.get("demo"):
        raise SystemExit(f"Refusing to submit {submission_csv}: {record_json} says it was made from the drawn "
                         "demo data, which says nothing about The Simpsons. Run `make all` on the Kaggle data.")
    run_metrics = record_json.parent / f"{run}.json"
    if not run_metrics.is_file():
        raise SystemExit(f"Refusing to submit {submission_csv}: its run's metrics {run_metrics} do not exist")
    if submission_csv.stat().st_mtime < run_metrics.stat().st_mtime:
        raise SystemExit(f"Refusing to submit a stale {submission_csv}: it is older than {run_metrics} (run "
                         f"{run!r} was trained again since). Run the report (`make all`) again.")
    if sample_submission is None and record.get("sample_submission"):
        sample_submission = record["sample_submission"]
    if sample_submission is None:
        from ..data.layout import DatasetNotFoundError, find_layout

        try:
            sample_submission = find_layout(paths.kaggle_data_source()).sample_submission
        except DatasetNotFoundError as exc:
            raise SystemExit(f"Cannot check {submission_csv}: {exc}") from None
        if sample_submission is None:
            raise SystemExit(f"Cannot check {submission_csv}: no sample_submission.csv in {paths.kaggle_data_source()}")
    classes = read_json(run_metrics)["classes"]
    try:
        frame = pd.read_csv(submission_csv, dtype=str)
    except pd.errors.EmptyDataError:
        raise SystemExit(f"Refusing to submit {submission_csv}: the file is empty (no Id,Expected header); run "
                         "the report (`make all`) again") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SystemExit(f"Refusing to submit {submission_csv}: not a readable CSV "
                         f"({' '.join(str(exc).split())[:200]})") from None
    try:
        check_submission(frame, read_ids(sample_submission), classes)
    except SubmissionError as exc:
        raise SystemExit(f"Refusing to submit {submission_csv}: {exc}") from None
    return record


def submit(submission_csv: str | os.PathLike, record_json: str | os.PathLike, message: str | None = None,
           competition: str = COMPETITION, sample_submission: str | os.PathLike | None = None) -> str:
    """Send ``submission_csv`` with ``kaggle competitions submit -c COMPETITION -f FILE -m MESSAGE`` after
    ``check_submittable``; refuses without Kaggle credentials (``has_token``). ``message`` defaults to
    ``"<run> <git commit>"``. Returns the message sent."""
    record = check_submittable(submission_csv, record_json, sample_submission)
    if not has_token():
        raise SystemExit(NO_TOKEN_SUBMIT)
    if message is None:
        message = f"{record['run']} {_run_commit(Path(record_json).parent.parent, record['run'])}"
    cmd = [kaggle_cli(), "competitions", "submit", "-c", competition, "-f", str(submission_csv), "-m", message]
    result = subprocess.run(cmd)
    if result.returncode != 0:
        raise SystemExit(f"`kaggle competitions submit -c {competition}` failed (exit {result.returncode}). Check "
                         f"that you accepted the rules at https://www.kaggle.com/c/{competition} and your token.")
    print(f"Submitted {submission_csv} to {competition}: {message!r}")
    return message


def submit_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.pipeline.kaggle submit",
                                     description="Send outputs/<profile>/submission.csv to the competition")
    parser.add_argument("--profile", default="full")
    parser.add_argument("--message", help='default: "<run> <git commit>"')
    parser.add_argument("--competition", default=COMPETITION)
    args = parser.parse_args(argv)
    from ..config.params import ParameterError, check_profile_name

    try:
        check_profile_name(args.profile)
    except ParameterError as exc:
        raise SystemExit(f"error: {exc}") from None
    submit(*submission_files(args.profile), message=args.message, competition=args.competition)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["submit"]:
        return submit_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(paths.kaggle_data_dir()), help="target folder (default data/kaggle)")
    parser.add_argument("--zip", help="unpack this zip instead of downloading")
    parser.add_argument("--check-credentials", action="store_true",
                        help="only check that the kaggle CLI will find credentials (or the zip is there)")
    parser.add_argument("--check-data", action="store_true",
                        help="only check that the Kaggle data is there (data/kaggle, or mounted under /kaggle/input)")
    args = parser.parse_args(argv)
    if args.check_data:
        found = paths.kaggle_data_source()
        if not found.exists():
            raise SystemExit(f"error: no Kaggle data in {found} (nor under {paths.kaggle_input_dir()}, where Kaggle "
                             "Notebooks mount it): run `make data` first (or `make demo` for the drawn demo data)")
        print(f"Kaggle data: {found}")
        return
    if args.check_credentials:
        if not (Path(args.out) / f"{COMPETITION}.zip").exists() and not has_token():
            raise SystemExit(NO_TOKEN.format(out=args.out))
        return
    try:
        if args.zip:
            layout = unpack(args.zip, args.out)
            print(f"Unpacked: train {layout.train_dir}, test {layout.test_dir}")
        else:
            download(args.out)
    except UnpackError as exc:
        raise SystemExit(f"error: {exc}") from None
    except OSError as exc:
        from ..config.files import describe_os_error

        raise SystemExit(f"error: {describe_os_error(exc)}") from None


if __name__ == "__main__":
    main()
