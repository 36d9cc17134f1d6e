"""Every command the README, the docs and the parameter files quote exists: each ``make <target>`` is a
target of the Makefile, each ``python -m <module>`` a module that runs, and each of its subcommands one
that ``<module> <subcommand> --help`` accepts. A command renamed or removed in the code fails here, naming
the file that still quotes it."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "params").rglob("*.yaml"))]


def code_spans(text: str) -> list[str]:
    """The text a document sets as code: fenced blocks and inline ``spans``."""
    fenced = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M)
    rest = re.sub(r"^```[^\n]*\n.*?^```", "", text, flags=re.S | re.M)
    return fenced + [span.replace("\n", " ") for span in re.findall(r"`([^`]+)`", rest)]  # a span may wrap


def quoted() -> tuple[dict[str, set[str]], dict[tuple[str, str | None], set[str]]]:
    """``make`` targets and (module, subcommand) pairs, each with the documents that quote it."""
    targets: dict[str, set[str]] = {}
    modules: dict[tuple[str, str | None], set[str]] = {}
    for doc in DOCUMENTS:
        name = str(doc.relative_to(REPO))
        for span in code_spans(doc.read_text(encoding="utf-8")):
            for line in span.splitlines():
                line = line.split("#", 1)[0] if doc.suffix == ".md" else line
                for target in re.findall(r"(?:^|&&|;|\|\||\(|\$)\s*make\s+(?:[A-Z_]+=\S+\s+)*([a-z][\w-]*)", line):
                    targets.setdefault(target, set()).add(name)
                for module, sub in re.findall(r"python[\d.]*\s+-m\s+([\w.]+)(?:\s+([a-z][\w-]*))?", line):
                    modules.setdefault((module, sub or None), set()).add(name)
    return targets, modules


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return {t for line in re.findall(r"^([a-zA-Z][\w .-]*?):(?!=)", text, re.M) for t in line.split()}


def test_the_documents_quote_commands_at_all():
    targets, modules = quoted()
    assert {"demo", "test", "sweep", "status"} <= set(targets)
    assert ("simpsons_lib.pipeline", "run") in modules and ("simpsons_lib.config.params", "show") in modules


def test_every_quoted_make_target_exists():
    targets, _ = quoted()
    known = makefile_targets()
    missing = {t: sorted(docs) for t, docs in targets.items() if t not in known}
    assert not missing, f"make targets quoted but not in the Makefile: {missing}"


def test_every_quoted_python_module_and_subcommand_exists():
    _, modules = quoted()
    problems = {}
    for (module, sub), docs in sorted(modules.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        if module == "pydoc" or not module.startswith("simpsons_lib"):
            continue
        spec = importlib.util.find_spec(module) if _parent_exists(module) else None
        if spec is None:
            problems[f"python -m {module}"] = sorted(docs)
            continue
        if spec.submodule_search_locations is not None and importlib.util.find_spec(f"{module}.__main__") is None:
            problems[f"python -m {module} (a package without __main__)"] = sorted(docs)
            continue
        args = [sub, "--help"] if sub else ["--help"]
        run = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, cwd=REPO,
                             timeout=300)
        if run.returncode != 0:
            problems[f"python -m {module} {' '.join(args)}"] = sorted(docs) + [run.stderr.strip()[-300:]]
    assert not problems, f"commands quoted that do not run: {problems}"


def _parent_exists(module: str) -> bool:
    parts = module.split(".")
    return all(importlib.util.find_spec(".".join(parts[:i])) is not None for i in range(1, len(parts)))


def test_python_m_pipeline_help_lists_every_subcommand():
    run = subprocess.run([sys.executable, "-m", "simpsons_lib.pipeline", "--help"], capture_output=True, text=True,
                         cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stderr
    for command in ("plan", "run", "index", "locked", "demo-data", "sweep", "status", "compare"):
        assert re.search(rf"^\s+{command}\s+\S", run.stdout, re.M), f"{command} not listed:\n{run.stdout}"
