"""The tables of the notebooks' pages read as tables: no pandas index column (0, 1, 2) beside the real
columns, no ``NaN`` (a "–" where a run has no such images), no raw Series (``Name: …, dtype: object``),
a learning rate never rounded to 0.0000; and a training page says what its parameters table is once."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from simpsons_lib.reporting import tables

REPO = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def html(styler) -> str:
    return styler.to_html()


def cells(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>.*?</t[dh]>", page, re.S)]


def test_a_run_indexed_table_shows_the_run_as_a_column_and_a_dash_for_no_value():
    frame = pd.DataFrame([{"run": "simple_cnn", "split": "random", "with a near-duplicate in training": 12,
                           "micro-F1 on those": 0.98, "micro-F1 on the others": 0.9},
                          {"run": "simple_cnn_grouped", "split": "grouped", "with a near-duplicate in training": 0,
                           "micro-F1 on those": np.nan, "micro-F1 on the others": 0.91}]).set_index("run")
    page = html(tables.show(frame))
    assert "NaN" not in page and "nan" not in page
    assert cells(page)[:2] == ["run", "split"]  # the run is the first column, no blank index header
    assert "simple_cnn_grouped" in cells(page) and "–" in cells(page)
    assert "row_heading" not in page


def test_a_numbered_table_has_no_index_column():
    frame = pd.DataFrame({"run": ["a", "b", "c"], "micro-F1 (no TTA)": [0.9, 0.91, 0.92]})
    page = html(tables.show(frame))
    assert "row_heading" not in page and cells(page)[:2] == ["run", "micro-F1 (no TTA)"]
    assert not {"0", "1", "2"} & set(cells(page))


def test_an_epoch_history_keeps_its_learning_rate_and_times():
    history = pd.DataFrame({"epoch": [1, 2], "val_micro_f1": [0.5, 0.61234], "lr": [1e-3, 1e-5],
                            "seconds": [12.345, 11.0]})
    shown = cells(html(tables.show(history)))
    assert "1e-05" in shown and "0.001" in shown and "0.0000" not in shown
    assert "12.3" in shown and "0.6123" in shown and "1" in shown


def test_named_values_are_a_table_headed_by_their_name_not_a_raw_series():
    check = pd.Series({"images": 48, "mass inside the box": 0.41234, "box share of the image": None},
                      name="Grad-CAM of the true class, on correctly predicted validation images", dtype=object)
    page = html(tables.show_values(check))
    assert "dtype" not in page and "Name:" not in page
    assert cells(page)[:2] == [check.name, "value"]
    assert ["images", "48", "mass inside the box", "0.4123", "box share of the image", "–"] == cells(page)[2:]


def code_cells(notebook: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]


def test_the_notebooks_show_their_tables_through_the_table_view():
    for nb in NOTEBOOKS:
        for source in code_cells(nb):
            last = source.strip().splitlines()[-1] if source.strip() else ""
            assert not last.endswith(".round(4)"), f"{nb.name}: a frame shown raw: {last}"
            assert last not in ("cue", "validation", "comparison"), f"{nb.name}: a frame shown raw: {last}"
    report = "\n".join(code_cells(REPO / "notebooks" / "05_report.ipynb"))
    assert "tables.show_values(gradcam.box_check(" in report
    for name in ("cue", "validation", "comparison", "tta"):
        assert f"tables.show({name}" in report


def test_a_page_says_what_its_parameters_table_is_once():
    """The parameters table (``Params._repr_html_``) says what it shows and how to list every value; the
    markdown before it does not say it again."""
    for nb in NOTEBOOKS:
        text = " ".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown")
        assert "lists every value with its help" not in text and "what differs from the defaults" not in text, nb.name
