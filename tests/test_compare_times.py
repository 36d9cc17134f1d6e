"""`make compare` prints a time as a time: training seconds to a tenth, a score to four places."""

from simpsons_lib.config import paths
from simpsons_lib.config.files import write_json
from simpsons_lib.reporting import compare


def test_compare_rounds_the_training_seconds(tmp_path):
    study = paths.StudyPaths("demo", tmp_path / "outputs" / "demo")
    for run, seconds, micro in (("a", 263.49, 0.91234), ("b", 614.59, 0.93)):
        write_json(study.make_dirs().run(run).metrics_json,
                   {"micro_f1": micro, "macro_f1": 0.8, "accuracy": micro, "epochs_trained": 3,
                    "train_seconds": seconds, "params": {"lr": 0.001 if run == "a" else 0.002}})
    text = compare.compare(study, "a", "b")
    line = next(l for l in text.splitlines() if "training seconds" in l)
    assert line.split()[-3:] == ["263.5", "614.6", "+351.1"], line
    assert "0.9123" in text and "+0.0177" in text  # scores keep four places
