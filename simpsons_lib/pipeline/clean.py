"""``make clean``: remove what the study wrote in its outputs folder, and nothing else.

    python -m simpsons_lib.pipeline clean            # every profile's outputs, the cache
    python -m simpsons_lib.pipeline clean --dry-run  # say what would go

The outputs folder (``SIMPSONS_OUTPUTS_DIR``) may be shared with other work (``/kaggle/working``) or be
the data folder itself, so nothing is removed by folder: only

- in a profile folder that has a plan (``.plan/plan.mk``) or manifests (``manifests/*.json``), the
  entries the pipeline writes there (``notebooks``, ``reports``, ``figures``, ``metrics``, ``models``,
  ``manifests``, ``sweeps``, ``tracking``, ``.plan``, ``.lock``, ``submission.csv``, ``predictions.csv``),
  then the profile folder when nothing else is left in it;
- ``cache/`` when every file in it is one of the study's caches.

An entry that is or holds a data or parameter folder, the project or the home folder is never removed
(with outputs and data in one folder, the data stays). A folder with nothing of the study's is refused (it is not the study's outputs), and so
is a clean while any profile's pipeline holds its lock.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
from pathlib import Path

from ..config import paths
from ..config.files import lock_or_holder

PROFILE_ENTRIES = ("notebooks", "reports", "figures", "metrics", "models", "manifests", "sweeps", "tracking",
                   ".plan", ".lock", "submission.csv", "predictions.csv")
CACHE_FILE = re.compile(r"^\.?(images_|dct_hashes_|near_duplicate_pairs_|scan_)[^/]*\.(npy|json)$")
KEEP = {".gitkeep"}


class CleanRefused(RuntimeError):
    """``clean`` removed nothing; the message is one line saying why."""


def _is_profile(folder: Path) -> bool:
    return (folder / ".plan" / "plan.mk").is_file() or any((folder / "manifests").glob("*.json"))


CONTENT_HASHES = re.compile(r"^\.?[0-9a-f]{16}\.json[^/]*$")  # data.layout.content_hashes' records (and temp files)


def _is_cache(folder: Path) -> bool:
    def study_file(f: Path) -> bool:
        if f.is_symlink():
            return False
        if f.is_dir():
            return f == folder / "content_hashes"
        if f.parent == folder / "content_hashes":
            return bool(CONTENT_HASHES.match(f.name))
        return f.parent == folder and bool(CACHE_FILE.match(f.name))
    return all(study_file(f) for f in folder.rglob("*"))


def protected() -> list[Path]:
    """The folders clean never removes, nor any folder holding one of them: the data folders (the
    default's and every profile's ``data_dir``), the parameters, the project, the home folder."""
    found = [paths.data_dir(), paths.params_dir(), paths.PROJECT_ROOT, Path.home().resolve(), Path("/")]
    with contextlib.suppress(Exception):  # without the environment (PyYAML), the defaults alone
        from ..config import params

        for common in paths.params_dir().glob(f"*/{params.COMMON_FILE}"):
            with contextlib.suppress(Exception):
                data_dir = params.load_yaml(common).get("data_dir")
                if isinstance(data_dir, str) and data_dir:
                    found.append(Path(os.path.expanduser(data_dir)).resolve())
    return list(dict.fromkeys(found))


def _touches(entry: Path, guarded: list[Path]) -> Path | None:
    """The protected folder that ``entry`` is or holds; None when none (a link is removed, never followed)."""
    if entry.is_symlink():
        return None
    real = entry.resolve()
    return next((g for g in guarded if g == real or g.is_relative_to(real)), None)


def plan_clean(outputs: Path | None = None) -> tuple[list[Path], list[Path], list[Path]]:
    """What clean removes (files and folders), the profile folders it then removes when empty, and what
    it leaves in the outputs folder. Raises ``CleanRefused`` when the folder holds nothing of the study's."""
    outputs = (outputs or paths.outputs_dir()).resolve()
    if not outputs.is_dir():
        return [], [], []
    guarded = protected()
    remove, profiles, kept = [], [], []
    for entry in sorted(outputs.iterdir()):
        if entry.name in KEEP:
            continue
        if entry.is_symlink() or not entry.is_dir():
            kept.append(entry)
        elif entry.name == "cache" and _is_cache(entry):
            remove.append(entry)
        elif _is_profile(entry):
            profiles.append(entry)
            remove += [entry / name for name in PROFILE_ENTRIES if os.path.lexists(entry / name)]
        else:
            kept.append(entry)
    for entry in list(remove):
        if _touches(entry, guarded) is not None:
            remove.remove(entry)
            kept.append(entry)
    if not remove and kept:
        names = ", ".join(e.name for e in kept[:5]) + (", …" if len(kept) > 5 else "")
        raise CleanRefused(f"{outputs} does not look like the study's outputs (no profile with a plan or "
                           f"manifests, no cache; it holds {names}); nothing removed. Check SIMPSONS_OUTPUTS_DIR")
    return remove, profiles, kept


@contextlib.contextmanager
def _all_locks(profiles: list[Path]):
    """Hold every profile's ``.lock`` (none waits): a running pipeline or sweep refuses the clean."""
    with contextlib.ExitStack() as stack:
        for folder in profiles:
            lock = folder / ".lock"
            if not lock.is_file():
                continue
            holder = lock_or_holder(stack.enter_context(open(lock, "a+")))
            if holder is not None:
                raise CleanRefused(f"a pipeline is running on {folder} ({holder}); wait for it to finish or stop "
                                   "it, then clean; nothing removed") from None
        yield


def clean(outputs: Path | None = None, dry_run: bool = False) -> tuple[list[Path], list[Path]]:
    """Remove what ``plan_clean`` lists, holding every profile's lock; returns what was (or would be)
    removed, and what is kept."""
    remove, profiles, kept = plan_clean(outputs)
    if dry_run:
        return remove, kept
    with _all_locks(profiles):
        for entry in remove:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
    for folder in profiles:
        with contextlib.suppress(OSError):
            folder.rmdir()  # only when nothing else is left in it
    return remove, kept


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m simpsons_lib.pipeline clean",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("cmd", choices=["clean"])
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    args = parser.parse_args(argv)
    outputs = paths.outputs_dir()
    try:
        removed, left = clean(outputs, args.dry_run)
    except CleanRefused as exc:
        raise SystemExit(f"error: clean: {exc}") from None
    except OSError as exc:
        from ..config.files import describe_os_error

        raise SystemExit(f"error: clean: {describe_os_error(exc)}") from None
    verb = "would remove" if args.dry_run else "removed"
    shown = ", ".join(str(p.relative_to(outputs)) for p in removed[:12]) + (", …" if len(removed) > 12 else "")
    print(f"clean: {verb} {len(removed)} entries of {outputs}" + (f": {shown}" if removed else ""))
    if left:
        print(f"clean: kept what the study did not make: {', '.join(str(p.relative_to(outputs)) for p in left[:8])}"
              + (", …" if len(left) > 8 else ""))


if __name__ == "__main__":
    main()
