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
  2. Give the kaggle CLI your credentials, one of:
     - `.venv/bin/kaggle auth login` (signs in through the browser and caches the credentials);
     - kaggle.com/settings -> API -> "Generate New Token", then `export KAGGLE_API_TOKEN=<token>`
       or save it as ~/.kaggle/access_token;
     - a legacy kaggle.json: mkdir -p ~/.kaggle && mv kaggle.json ~/.kaggle/ && chmod 600 ~/.kaggle/kaggle.json
       (or set KAGGLE_USERNAME and KAGGLE_KEY).
  3. Run `make data` again.
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
        result = subprocess.run([cli, "competitions", "download", competition, "-p", str(out_dir)])
        if result.returncode != 0 or not zip_path.exists():
            raise SystemExit(f"`kaggle competitions download {competition}` failed (exit {result.returncode}). "
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
