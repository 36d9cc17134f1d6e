"""Whatever a user types into a make variable reaches the programs as text and is never run as shell:
each variable of each target, with a quote that closes the recipe's quoting, a command substitution and
backticks. The targets run for real (they fail fast on the odd names; where a case names PY=echo, echo stands in for
the program, as make quotes the same text for it); the marker file must not appear."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # about 90 make runs, some importing torch

PAYLOADS = {
    "single_quote": "a' ; touch {m} ; echo '",
    "double_quote": 'a" ; touch {m} ; echo "',
    "substitution": "$$(touch {m})",  # make turns $$ into $: the shell sees $(touch ...)
    "backticks": "`touch {m}`",
}

# (target, variable, other variables): every variable a user types, on a target that reads it
CASES = [
    ("compare", "A", {"B": "b"}),
    ("compare", "B", {"A": "a"}),
    ("compare", "PROFILE", {"A": "a", "B": "b"}),
    ("predict", "RUN", {"IMAGES": "nothing.jpg"}),
    ("predict", "PROFILE", {"IMAGES": "nothing.jpg"}),
    # the predict program itself runs for RUN; for TTA and IMAGES echo stands in for it (make's quoting is what is
    # tested; predict's own refusal of any text is pinned in-process in test_faults.py and test_safety_predict.py)
    ("predict", "TTA", {"IMAGES": "nothing.jpg", "PROFILE": "nosuch", "PY": "echo"}),
    ("predict", "IMAGES", {"PROFILE": "nosuch", "PY": "echo"}),
    ("status", "PROFILE", {}),
    ("sweep", "PROFILE", {"RUN": "simple_cnn", "GRID": "lr=1e-3"}),
    ("sweep", "RUN", {"PROFILE": "nosuch", "GRID": "lr=1e-3"}),
    ("sweep", "SWEEP", {"PROFILE": "nosuch"}),
    ("sweep", "GRID", {"PROFILE": "nosuch", "RUN": "simple_cnn"}),
    ("pipeline", "PROFILE", {}),
    ("demo-data", "PROFILE", {}),
    ("demo-data", "DEMO_SCALE", {"PROFILE": "nosuch"}),
    ("submit", "PROFILE", {}),
    ("all", "SIMPSONS_DATA_DIR", {}),
    ("all", "PARAMS_ROOT", {}),
    ("data", "SIMPSONS_DATA_DIR", {}),
    ("tracking-ui", "PROFILE", {"PY": "echo"}),  # echo for the program: a real server would start
    ("tracking-ui", "TB_ARGS", {"PY": "echo"}),
    ("tracking-ui", "SIMPSONS_OUTPUTS_DIR", {"PY": "echo"}),
    ("lab", "LAB_ARGS", {"PY": "echo"}),
]


@pytest.mark.parametrize("target,variable,others", CASES, ids=[f"{t}-{v}" for t, v, _ in CASES])
def test_no_make_variable_runs_shell(tmp_path, target, variable, others):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    env.update(SIMPSONS_OUTPUTS_DIR=str(tmp_path / "outputs"), SIMPSONS_DATA_DIR=str(tmp_path / "data"),
               HOME=str(tmp_path / "home"), KAGGLE_CONFIG_DIR=str(tmp_path / "kaggle"))
    env.pop("KAGGLE_API_TOKEN", None)
    env.pop("KAGGLE_USERNAME", None)
    stamp = tmp_path / "stamp"
    stamp.touch()
    for name, payload in PAYLOADS.items():
        marker = tmp_path / f"ran_{name}"
        values = {"PY": sys.executable, "PYTHON_BASE": sys.executable, "STAMP": str(stamp), **others,
                  variable: payload.format(m=marker)}
        result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO), target,
                                 *(f"{k}={v}" for k, v in values.items())],
                                env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
        assert not marker.exists(), f"{target} {variable}={values[variable]!r} ran shell: {result.stderr[-500:]}"
        assert "Traceback" not in result.stderr, result.stderr[-2000:]
