"""The index page's chart (the report's evolution figure) is readable at the page's width: every text of
the figure, the value labels over the bars included, is at least 11 px where the page shows it. A text of
``s`` pt in a PNG saved at ``dpi`` is ``s * dpi / 72`` px in the image, drawn at ``shown / natural`` of its
size, where ``natural`` is the PNG's width and ``shown`` the width the page gives it: measured in headless
Chromium at 1280 px and 1920 px (skipped without Chromium), and, without a browser, at the page's content
width (the body's 1250 px less its padding), the width the chart takes on any window 1280 px or wider."""

from __future__ import annotations

import re
import shutil
import subprocess

import matplotlib.text
import pandas as pd
import pytest
from PIL import Image

from simpsons_lib.config import params, paths
from simpsons_lib.config.files import write_json, write_text
from simpsons_lib.reporting import index_page, plots

READABLE_PX = 11
DPI = 110  # config.files.save_figure's
CONTENT_PX = 1250 - 2 * 16  # the index page's body: max-width 1250px, padding 0 1em
RUNS = ["simple_cnn", "simple_cnn_aug", "simple_cnn_grouped", "mid_cnn", "resnet50", "modern", "ensemble"]

MEASURE = """<script>
(function () {
  const img = document.querySelector('img.chart');
  const out = document.createElement('pre');
  out.id = 'chart';
  out.textContent = img ? String(img.getBoundingClientRect().width) : 'none';
  document.body.appendChild(out);
})();
</script>"""


def _table() -> pd.DataFrame:
    scores = [0.9438, 0.9512, 0.9259, 0.9601, 0.9702, 0.9811, 0.975]
    return pd.DataFrame({"run": RUNS, "micro_f1": scores, "macro_f1": [s - 0.22 for s in scores]})


@pytest.fixture
def chart(tmp_path):
    """The evolution figure of seven runs, saved where the report saves it; the smallest of its texts (pt)
    and the PNG's width (px), on an index page of a finished study that shows it."""
    study = paths.StudyPaths("demo", tmp_path / "outputs" / "demo")
    figure = plots.f1_evolution(_table())
    texts = [t for t in figure.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]
    assert len(texts) >= 2 * len(RUNS)  # the value labels are among them
    smallest = min(t.get_fontsize() for t in texts)
    png = study.make_dirs().figures / "report_f1_evolution.png"
    plots.save(figure, png)
    for run in ("report",):
        rp = study.run(run)
        p = dict(params.resolve("demo", run))
        write_json(rp.manifest, {"run": run, "kind": "report", "notebook": "notebooks/05_report.ipynb",
                                 "parameters": p, "keys": None, "data": {"demo": True}, "started": "2026-01-01"})
        write_text(rp.notebook, "{}")
    write_text(study.evolution_csv, "run,micro_f1\n" + "".join(f"{r},0.9\n" for r in RUNS))
    index_page.build(study, ["report"])
    return study, smallest, Image.open(png).width


def test_every_text_of_the_chart_is_readable_at_the_pages_content_width(chart):
    study, smallest, natural = chart
    assert 'class="chart"' in study.index_html.read_text()
    px = smallest * DPI / 72 * CONTENT_PX / natural
    assert px >= READABLE_PX, f"{smallest} pt in a {natural} px PNG shown {CONTENT_PX} px wide: {px:.1f} px"


CHROMIUM = next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (apt-get install chromium): the chart's "
                    "width on the page is not measured; the test at the page's content width still holds")
@pytest.mark.parametrize("width", [1280, 1920])
def test_every_text_of_the_chart_is_readable_as_a_browser_shows_the_index(chart, width):
    study, smallest, natural = chart
    measured = study.reports / "index_measured.html"
    measured.write_text(study.index_html.read_text().replace("</body>", MEASURE + "</body>"))
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                          f"--window-size={width},2400", "--dump-dom", measured.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="chart">([\d.]+)</pre>', dom)
    assert found, f"the chart was not laid out: {dom[-500:]!r}"
    shown = float(found.group(1))
    px = smallest * DPI / 72 * shown / natural
    assert px >= READABLE_PX, f"at {width} px the chart is {shown:.0f} px wide: its smallest text is {px:.1f} px"
