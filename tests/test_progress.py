"""Progress events: fit appends one JSON line per epoch to SIMPSONS_PROGRESS_FILE; follow prints them."""

import io
import json
import threading

import pytest

from simpsons_lib.config import console as progress
from simpsons_lib.pipeline import progress as pipeline_progress
from test_checkpoints import tiny_fit


def test_epoch_line_format():
    line = progress.epoch_line("mid_cnn", 3, 6, 1.2344, 0.4561, 812.4, 42.2)
    assert line == "[mid_cnn] epoch 3/6  loss 1.234  val micro-F1 0.456  812 img/s  ETA 0:42"
    assert progress.epoch_line("r", 1, 2, 0.5, 0.5, 10, 3723).endswith("ETA 1:02:03")
    assert progress.epoch_line("r", 2, 2, 0.5, 0.5, 10, None).endswith("ETA ?")


def test_fit_writes_one_event_per_epoch_and_follow_prints_them(tmp_path, monkeypatch, capsys):
    events_file = tmp_path / "progress" / "events.jsonl"
    monkeypatch.setenv(progress.PROGRESS_FILE_ENV, str(events_file))
    _, result = tiny_fit(tmp_path, epochs=3, meta={"lr": 0.01, "run_name": "tiny"})
    assert capsys.readouterr().out == ""  # with a progress file, nothing goes to the notebook

    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    assert [e["epoch"] for e in events] == [1, 2, 3] and {e["run"] for e in events} == {"tiny"}
    assert all(e["total"] == 3 for e in events) and events[-1]["eta_seconds"] == 0
    history = result.history
    assert [e["train_loss"] for e in events] == pytest.approx(list(history["train_loss"]))
    assert [e["val_micro_f1"] for e in events] == pytest.approx(list(history["val_micro_f1"]))
    mean_so_far = history["seconds"].iloc[0]
    assert events[0]["eta_seconds"] == pytest.approx(mean_so_far * 2)  # mean epoch time x epochs left

    stop, out = threading.Event(), io.StringIO()
    stop.set()  # already asked to stop: it still prints everything written so far, then returns
    assert pipeline_progress.follow(events_file, stop, out) == 3
    printed = out.getvalue().splitlines()
    assert printed[0].startswith("[tiny] epoch 1/3  loss ") and printed[2].startswith("[tiny] epoch 3/3")
    assert printed[-1].endswith("ETA 0:00")


def test_follow_in_a_thread_prints_events_as_they_arrive(tmp_path, monkeypatch):
    events_file = tmp_path / "events.jsonl"  # not created yet when follow starts
    monkeypatch.setenv(progress.PROGRESS_FILE_ENV, str(events_file))
    stop, out = threading.Event(), io.StringIO()
    thread = threading.Thread(target=pipeline_progress.follow, args=(events_file, stop, out), kwargs={"poll_seconds": 0.01},
                              daemon=True)
    thread.start()
    progress.report_epoch("a", 1, 2, 2.0, 0.25, 100.0, 5.0)
    with open(events_file, "a") as f:
        f.write("not an event\n")
        f.write('{"run": "a", "epoch": 2, "total": 2, "train_loss": 1.0, ')  # half a line: never printed half
        f.flush()
        f.write('"val_micro_f1": 0.5, "images_per_s": 90.0, "eta_seconds": 0.0}\n')
    progress.report_epoch("b", 1, 1, 1.5, 0.5, 50.0, 0.0)
    stop.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert out.getvalue().splitlines() == ["[a] epoch 1/2  loss 2.000  val micro-F1 0.250  100 img/s  ETA 0:05",
                                           "[a] epoch 2/2  loss 1.000  val micro-F1 0.500  90 img/s  ETA 0:00",
                                           "[b] epoch 1/1  loss 1.500  val micro-F1 0.500  50 img/s  ETA 0:00"]


def test_without_a_progress_file_the_line_is_logged(monkeypatch, caplog):
    monkeypatch.delenv(progress.PROGRESS_FILE_ENV, raising=False)
    with caplog.at_level("INFO", logger="simpsons_lib.config.console"):
        event = progress.report_epoch("r", 1, 4, 0.5, 0.75, 20.0, 90.0)
    assert event["epoch"] == 1 and caplog.messages == ["[r] epoch 1/4  loss 0.500  val micro-F1 0.750  20 img/s  ETA 1:30"]
