"""The README is a front page and docs/ holds the rest: every link resolves, the parameters page is the
schema's, the results table is the original write-up's figures, and the layout page names the wings in the
order the import contract sets."""

import re
import tomllib
from pathlib import Path

from simpsons_lib.config import params, params_page
from simpsons_lib.reporting import original
from simpsons_lib.training import fingerprint

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where brackets are not links."""
    text = re.sub(r"(?ms)^```.*?^```", "", text)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings (outside code blocks)."""
    text = re.sub(r"(?ms)^```.*?^```", "", page.read_text(encoding="utf-8"))
    headings = re.findall(r"(?m)^#{1,6} (.+)$", text)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower().replace("`", "")).replace(" ", "-") for h in headings}


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    """Each relative link of ``page`` whose file (inside ``root``) or heading does not exist."""
    broken = []
    for target in LINK.findall(prose(page.read_text(encoding="utf-8"))):
        if re.match(r"[a-z]+:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists() or root.resolve() not in file.parents:
            broken.append(f"{page.name}: {target}: no such file")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file)):
            broken.append(f"{page.name}: {target}: no such heading")
    return broken


def test_every_link_of_the_readme_and_the_docs_resolves():
    assert len(PAGES) >= 10
    assert [b for page in PAGES for b in broken_links(page)] == []


def test_a_broken_link_or_anchor_is_found(tmp_path):
    (tmp_path / "README.md").write_text("# Top\n\n[ok](#top) [gone](docs/gone.md) [bad](#nowhere) "
                                        "`[code](not/a/link.md)` [web](https://example.org)\n")
    assert broken_links(tmp_path / "README.md", tmp_path) == ["README.md: docs/gone.md: no such file",
                                                             "README.md: #nowhere: no such heading"]


def test_the_readme_is_a_front_page():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    assert "make demo" in text and "make test" in text and "drawn" in text.lower()
    linked = {Path(t.partition("#")[0]).name for t in LINK.findall(prose(text)) if t.startswith("docs/")}
    assert {p.name for p in PAGES[1:]} <= linked  # every page of docs/ is reachable from the front page
    # timings of benchmark runs stay in benchmarks/RESULTS.md
    assert not re.search(r"(?<![\w.])\d[\d.,]*\s*(img/s|s\b|min\b|seconds|minutes)", prose(text)), "a timing on the front page"


def test_the_results_table_is_the_original_write_ups_and_each_row_names_its_command():
    rows = [line for line in README.read_text(encoding="utf-8").splitlines()
            if line.startswith("| ") and "--run " in line]
    by_run = {re.search(r"--profile full --run (\w+)", row).group(1): row for row in rows}
    assert sorted(by_run) == sorted(params.profile_runs("full"))
    for run, row in by_run.items():
        notebook = params.resolve("full", run).notebook
        assert f"`{Path(notebook).stem}`" in row, (run, notebook)
        figures = original.FIGURES.get(run, {})
        shown = re.findall(r"\b0\.\d{3}\b", row)
        assert shown == [f"{figures[k]:.3f}" for k in ("val_micro_f1", "kaggle") if k in figures], run


def test_the_parameters_page_is_generated_from_the_schema():
    page = REPO / "docs" / "parameters.md"
    assert page.read_text(encoding="utf-8") == params_page.markdown(), \
        "docs/parameters.md is stale: run python -m simpsons_lib.config.params_page"
    for kind, schema in params.SCHEMAS.items():
        for key in schema:
            assert f"| `{key}` |" in page.read_text(encoding="utf-8"), (kind, key)


def test_a_schema_change_makes_the_parameters_page_stale(monkeypatch):
    before = params_page.markdown()
    spec = params.TRAIN["epochs"]
    monkeypatch.setitem(params.SCHEMAS["train"], "epochs", params.Spec(spec.types, 12, spec.help, check=spec.check))
    assert params_page.markdown() != before
    assert "| `epochs` | integer | `12` | yes |" in params_page.markdown()


def test_the_layout_page_names_the_wings_in_the_import_contracts_order():
    contract = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contract if c["type"] == "layers")
    text = (REPO / "docs" / "layout.md").read_text(encoding="utf-8")
    named = re.findall(r"(?m)^\| `(\w+)/` \|", text)
    assert ["simpsons_lib." + wing for wing in named] == layers
    shaping = re.findall(r"(?m)^\| `(\w+)/` \|.*\| yes", text)
    assert tuple(sorted(shaping)) == tuple(sorted(fingerprint.WEIGHT_SHAPING_WINGS))
