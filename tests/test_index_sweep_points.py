"""A sweep point on the index (an override run, ``<run>-<hash>``) shows beside its name the values it
varies from its run, in the steps table and in the list of sweeps (its best point)."""

import re

from simpsons_lib.config import params
from simpsons_lib.config.files import write_json, write_text
from simpsons_lib.reporting import sweeps
from test_index_page import finished, rendered, study  # noqa: F401 - the fixture


def test_a_sweep_point_shows_the_values_it_varies(study):  # noqa: F811
    finished(study, "simple_cnn", micro=0.80)
    point = params.resolve("demo", "simple_cnn", {"lr": 0.0003, "epochs": 6})
    name = point["run_name"]
    assert re.fullmatch(r"simple_cnn-[0-9a-f]{6}", name)
    finished(study, name, micro=0.84, parameters=dict(point), notebook="notebooks/01_simple_cnn.ipynb")
    write_json(study.dir / sweeps.SWEEPS_DIR / "simple_cnn_lr_epochs.json",
               {"name": "simple_cnn_lr_epochs", "run": "simple_cnn", "varied": ["lr", "epochs"],
                "points": [{"run_name": name, "status": "done", "val_micro_f1": 0.84}]})
    write_text(sweeps.page_path(study, "simple_cnn_lr_epochs"), "<html></html>")
    page = rendered(study)
    row = re.search(rf"<tr><td><b>{name}</b>.*?</tr>", page, re.S).group(0)
    assert re.search(r'<span class="small varied">(lr 0\.0003, epochs 6|epochs 6, lr 0\.0003)</span>', row)
    own = re.search(r"<tr><td><b>simple_cnn</b>.*?</tr>", page, re.S).group(0)
    assert "varied" not in own  # a run of the profile: nothing beside its name
    listed = page.split("<h2>Sweeps</h2>", 1)[1].split("</ul>", 1)[0]
    assert re.search(rf"best {name} \((lr 0\.0003, epochs 6|epochs 6, lr 0\.0003)\)", listed)
