"""``make data``: download journey-springfield with the kaggle CLI into ``data/kaggle`` and unpack it.

    python -m simpsons_lib.kaggle_download            # download + unpack + check the layout
    python -m simpsons_lib.kaggle_download --zip FILE # unpack a zip you already have

The zip is kept; unpacking refuses paths that would land outside the target folder.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from . import paths
from .data import DatasetLayout, find_layout

COMPETITION = "journey-springfield"

NO_TOKEN = """No Kaggle API token found. To download the competition data:
  1. Sign in at kaggle.com, open https://www.kaggle.com/c/journey-springfield and accept its rules.
  2. Account settings -> API -> "Create New Token": this downloads kaggle.json.
  3. mkdir -p ~/.kaggle && mv kaggle.json ~/.kaggle/ && chmod 600 ~/.kaggle/kaggle.json
     (or set KAGGLE_USERNAME and KAGGLE_KEY, or KAGGLE_API_TOKEN)
  4. Run `make data` again.
Or put journey-springfield.zip in {out} yourself and run `make data` (it is unpacked, not downloaded again).
Without the real data, `make demo` runs the whole study on drawn demo data."""


def has_token(env: dict | None = None, home: Path | None = None) -> bool:
    env = os.environ if env is None else env
    home = Path.home() if home is None else home
    config = Path(env.get("KAGGLE_CONFIG_DIR", home / ".kaggle"))
    return bool(
        (env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY")) or env.get("KAGGLE_API_TOKEN")
        or (config / "kaggle.json").is_file() or (config / "access_token").is_file()
    )


def unpack(zip_path: str | os.PathLike, out_dir: str | os.PathLike) -> DatasetLayout:
    """Extract ``zip_path`` into ``out_dir`` (zip-slip safe) and return the detected layout."""
    zip_path, out_dir = Path(zip_path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    root = out_dir.resolve()
    try:
        archive = zipfile.ZipFile(zip_path)
    except zipfile.BadZipFile as exc:
        raise ValueError(f"{zip_path} is not a valid zip file ({exc}); delete it and run `make data` again") from exc
    with archive:
        for member in archive.infolist():
            target = (root / member.filename).resolve()
            if not target.is_relative_to(root):
                raise ValueError(f"{zip_path}: member {member.filename!r} would be written outside {root}")
        archive.extractall(root)
    return find_layout(root)


def download(out_dir: str | os.PathLike | None = None, competition: str = COMPETITION) -> DatasetLayout:
    out_dir = Path(out_dir) if out_dir is not None else paths.kaggle_data_dir()
    zip_path = out_dir / f"{competition}.zip"
    if not zip_path.exists():
        if not has_token():
            raise SystemExit(NO_TOKEN.format(out=out_dir))
        cli = shutil.which("kaggle") or str(Path(sys.executable).parent / "kaggle")
        if not Path(cli).exists():
            raise SystemExit("The kaggle CLI is not installed in this environment: run `make setup` first.")
        out_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run([cli, "competitions", "download", "-c", competition, "-p", str(out_dir)])
        if result.returncode != 0 or not zip_path.exists():
            raise SystemExit(f"`kaggle competitions download -c {competition}` failed (exit {result.returncode}). "
                             f"Check that you accepted the competition's rules at "
                             f"https://www.kaggle.com/c/{competition} and that your token is valid.")
    layout = unpack(zip_path, out_dir)
    print(f"Kaggle data ready: train {layout.train_dir}, test {layout.test_dir}, "
          f"sample submission {layout.sample_submission}")
    return layout


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(paths.kaggle_data_dir()), help="target folder (default data/kaggle)")
    parser.add_argument("--zip", help="unpack this zip instead of downloading")
    args = parser.parse_args(argv)
    if args.zip:
        layout = unpack(args.zip, args.out)
        print(f"Unpacked: train {layout.train_dir}, test {layout.test_dir}")
    else:
        download(args.out)


if __name__ == "__main__":
    main()
