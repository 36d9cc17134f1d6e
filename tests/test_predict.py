"""Using a trained model: the slim export, predicting files and folders, TTA, ensembles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from simpsons_lib.config import files as io_utils
from simpsons_lib.pipeline import demo as demo_data
from simpsons_lib.data import layout as data
from simpsons_lib.inference import predict
from simpsons_lib.training import checkpoints
from simpsons_lib.training import evaluation
from simpsons_lib.training import models
from simpsons_lib.training.transforms import eval_transform

CLASSES = ["bart_simpson", "homer_simpson", "lisa_simpson", "marge_simpson", "ned_flanders"]
SIZE = 96


def rebuild_params(arch: str = "simple_cnn", **overrides) -> dict:
    return {"arch": arch, "image_size": SIZE, "backbone": "resnet50", "head_hidden": 32, "head_dropout": 0.0,
            "dropout": 0.5, "run_name": "simple_cnn", "title": "SimpleCnn", "lr": 0.01, **overrides}


def trained_like(arch: str = "simple_cnn", **kw) -> torch.nn.Module:
    """A seeded model whose BatchNorm statistics have moved (so buffers must travel too)."""
    torch.manual_seed(0)
    model = models.build_model(arch, len(CLASSES), SIZE, head_hidden=32, **kw)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, SIZE, SIZE) * 2 + 0.5)
    return model.eval()


@pytest.fixture
def image_folder(tmp_path):
    """Drawn images in several formats and colour modes, in nested folders, plus a corrupt JPEG, an
    empty PNG and a text file."""
    root = tmp_path / "images"
    (root / "nested" / "deeper").mkdir(parents=True)
    looks = demo_data.class_looks(CLASSES, seed=0)
    rng = np.random.default_rng(0)
    pictures = [demo_data.render_image(looks[c], rng) for c in CLASSES * 2]
    pictures[0].save(root / "img1.jpg", quality=90)
    pictures[1].convert("L").save(root / "img2_gray.png")
    pictures[2].convert("RGBA").save(root / "img10_rgba.png")
    pictures[3].convert("P").save(root / "nested" / "palette.gif")
    pictures[4].convert("CMYK").save(root / "nested" / "cmyk.jpg")
    pictures[5].save(root / "nested" / "deeper" / "a.webp")
    for i, picture in enumerate(pictures[6:]):
        picture.save(root / "nested" / f"more{i}.bmp")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg" * 10)
    (root / "nested" / "empty.png").write_bytes(b"")
    (root / "notes.txt").write_text("not an image")
    return root


def reference_probs(model: torch.nn.Module, paths) -> torch.Tensor:
    batch = torch.stack([eval_transform(SIZE)(data.load_rgb(p)) for p in paths])
    with torch.no_grad():
        return torch.softmax(model(batch), dim=1)


# --- export ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch,kw", [("simple_cnn", {}), ("mid_cnn", {}), ("transfer", {"backbone": "mobilenet_v2"})])
def test_export_then_load_gives_identical_predictions(tmp_path, arch, kw):
    model = trained_like(arch, **kw)
    path = checkpoints.export_model(tmp_path / "models" / "model.pt", model, CLASSES,
                                rebuild_params(arch, backbone=kw.get("backbone", "resnet50")))
    payload = torch.load(path, weights_only=True)  # plain data: no pickled code
    assert set(payload) == {"format", "state_dict", "classes", "params", "run", "title", "epoch", "fingerprint"}
    assert set(payload["params"]) == set(checkpoints.REBUILD_KEYS)  # lr etc. stay out
    assert [p.name for p in path.parent.iterdir()] == ["model.pt"]  # written atomically: no temp file left

    loaded, info = checkpoints.load_model(path)
    assert info["classes"] == CLASSES and info["run"] == "simple_cnn" and info["title"] == "SimpleCnn"
    assert not loaded.training
    x = torch.randn(4, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_export_needs_the_rebuild_parameters(tmp_path):
    params = rebuild_params()
    del params["image_size"]
    with pytest.raises(KeyError, match="image_size"):
        checkpoints.export_model(tmp_path / "model.pt", trained_like(), CLASSES, params)
    assert not (tmp_path / "model.pt").exists()


def test_a_training_checkpoint_exports_to_a_smaller_file(tmp_path):
    model = trained_like()
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 3, SIZE, SIZE)).sum().backward()
    optimizer.step()
    model.eval()
    checkpoint = tmp_path / "best.pt"  # a training checkpoint: weights, optimizer state, history
    torch.save({"model_state": model.state_dict(), "classes": CLASSES, "params": rebuild_params(),
                "optimizer_state": optimizer.state_dict(), "history": [{"epoch": 1, "train_loss": 1.0}]}, checkpoint)
    out = checkpoints.export_checkpoint(checkpoint)
    assert out == tmp_path / "model.pt"
    assert out.stat().st_size < checkpoint.stat().st_size
    loaded, _ = checkpoints.load_model(out)
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))


def test_half_precision_export_is_half_the_size_and_predicts_nearly_the_same(tmp_path):
    model = trained_like("transfer", backbone="mobilenet_v2")
    params = rebuild_params("transfer", backbone="mobilenet_v2")
    full = checkpoints.export_model(tmp_path / "full.pt", model, CLASSES, params)
    half = checkpoints.export_model(tmp_path / "half.pt", model, CLASSES, params, half=True)
    assert 0.45 < half.stat().st_size / full.stat().st_size < 0.55
    loaded, _ = checkpoints.load_model(half)
    assert next(loaded.parameters()).dtype == torch.float32
    x = torch.randn(4, 3, SIZE, SIZE)
    with torch.no_grad():
        reference, got = torch.softmax(model(x), 1), torch.softmax(loaded(x), 1)
    assert not torch.equal(reference, got)
    torch.testing.assert_close(got, reference, atol=2e-3, rtol=0)


def test_foreign_or_corrupt_files_fail_in_one_line_naming_them(tmp_path):
    good = checkpoints.export_model(tmp_path / "good.pt", trained_like(), CLASSES, rebuild_params())
    cases = {
        "garbage.pt": lambda p: p.write_bytes(b"not a torch file at all"),
        "truncated.pt": lambda p: p.write_bytes(good.read_bytes()[: good.stat().st_size // 2]),
        "foreign.pt": lambda p: torch.save({"weights": torch.zeros(3)}, p),
        "checkpoint.pt": lambda p: torch.save({"model_state": {}, "rng": np.random.get_state()}, p),
        "wrong_arch.pt": lambda p: checkpoints.export_model(p, trained_like(), CLASSES, rebuild_params("mid_cnn")),
    }
    for name, make in cases.items():
        path = tmp_path / name
        make(path)
        with pytest.raises(checkpoints.ExportError) as info:
            checkpoints.load_model(path)
        message = str(info.value)
        assert str(path) in message and "\n" not in message, message
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        checkpoints.load_model(tmp_path / "missing.pt")


# --- predicting files -----------------------------------------------------------------------------

def test_predict_files_skips_bad_files_and_predicts_the_rest(image_folder, tmp_path, caplog):
    model = trained_like()
    path = checkpoints.export_model(tmp_path / "model.pt", model, CLASSES, rebuild_params())
    loaded, info = checkpoints.load_model(path)
    extra = tmp_path / "single.png"
    data.load_rgb(image_folder / "img1.jpg").save(extra)
    frame, bad = predict.predict_files(loaded, info, [image_folder, extra, tmp_path / "nope.jpg"], top_k=3,
                                       batch_size=4)

    names = [p.replace(str(image_folder) + "/", "") for p in frame["path"]]
    assert names == ["img1.jpg", "img2_gray.png", "img10_rgba.png", "nested/cmyk.jpg", "nested/deeper/a.webp",
                     "nested/more0.bmp", "nested/more1.bmp", "nested/more2.bmp", "nested/more3.bmp",
                     "nested/palette.gif", str(extra)]  # natural order of the paths within each folder given
    assert sorted(p.name for p, _ in bad) == ["corrupt.jpg", "empty.png", "nope.jpg"]
    assert all(reason for _, reason in bad)
    assert "corrupt.jpg" in caplog.text
    assert list(frame.columns) == ["path", "class_1", "prob_1", "class_2", "prob_2", "class_3", "prob_3"]

    expected = reference_probs(model, frame["path"])
    top_p, top_i = expected.topk(3, dim=1)
    assert (frame["class_1"] == [CLASSES[i] for i in top_i[:, 0]]).all()
    assert (frame["class_3"] == [CLASSES[i] for i in top_i[:, 2]]).all()
    np.testing.assert_allclose(frame[["prob_1", "prob_2", "prob_3"]].to_numpy(), top_p.numpy(), atol=2e-6)
    assert frame.iloc[0, 1:].tolist() == frame.iloc[-1, 1:].tolist()  # the same image, twice


def test_predict_cli_prints_a_table_and_writes_the_csv(image_folder, tmp_path, capsys):
    model_pt = checkpoints.export_model(tmp_path / "model.pt", trained_like(), CLASSES, rebuild_params())
    out = tmp_path / "out" / "predictions.csv"
    predict.main(["--model", str(model_pt), str(image_folder), "--top-k", "2", "--tta", "--out", str(out),
                  "--device", "cpu"])
    printed = capsys.readouterr().out
    table = pd.read_csv(out)
    assert len(table) == 10 and list(table.columns) == ["path", "class_1", "prob_1", "class_2", "prob_2"]
    assert "img10_rgba.png" in printed and "top-2" in printed and "10 image(s) predicted" in printed
    assert "2 skipped" in printed
    loaded, info = checkpoints.load_model(model_pt)
    frame, _ = predict.predict_files(loaded, info, [image_folder], top_k=2, tta="flip")
    pd.testing.assert_frame_equal(table, frame)


def test_profile_run_best_is_the_highest_micro_f1_with_an_export(tmp_path):
    from simpsons_lib.config.paths import StudyPaths

    model = trained_like()
    for run, f1, exported in [("simple_cnn", 0.5, True), ("mid_cnn", 0.9, True), ("resnet50", 0.99, False)]:
        rp = StudyPaths("demo").run(run).make_dirs()
        io_utils.write_json(rp.metrics_json, {"micro_f1": f1, "classes": CLASSES})
        if exported:
            checkpoints.export_model(rp.models / "model.pt", model, CLASSES, rebuild_params(run_name=run))
    io_utils.write_json(StudyPaths("demo").submission_json, {"run": "resnet50", "rows": 3})
    assert predict.run_model_path("demo", "best") == StudyPaths("demo").run("mid_cnn").model_file
    assert predict.run_model_path("demo", "simple_cnn") == StudyPaths("demo").run("simple_cnn").model_file
    with pytest.raises(FileNotFoundError, match="resnet50"):
        predict.run_model_path("demo", "resnet50")
    with pytest.raises(FileNotFoundError, match="'other'"):
        predict.run_model_path("other", "best")


# --- TTA ------------------------------------------------------------------------------------------

def tta_probs(model, images, tta):
    """The one prediction loop's probabilities of one batch of images (Ids as targets)."""
    return torch.from_numpy(evaluation.predict(model, [(images, [str(i) for i in range(len(images))])], "cpu",
                                               tta=tta)[0])


def test_flip_tta_averages_exactly_the_two_passes():
    model = trained_like()
    torch.manual_seed(1)
    x = torch.randn(6, 3, SIZE, SIZE)
    with torch.no_grad():
        plain = torch.softmax(model(x), dim=1)
        flipped = torch.softmax(model(torch.flip(x, dims=[-1])), dim=1)
    assert not torch.allclose(plain, flipped, atol=1e-4)  # the model is not flip-invariant
    tta = tta_probs(model, x, "flip")
    assert torch.equal(tta, tta_probs(model, x, "flip"))  # deterministic
    assert torch.equal(tta, (plain + flipped) / 2)
    assert torch.equal(tta_probs(model, x, "none"), plain)
    assert torch.equal(tta_probs(model, x, True), tta) and torch.equal(tta_probs(model, x, False), plain)
    scales = tta_probs(model, x, "flip+scales")
    assert not torch.allclose(scales, tta, atol=1e-4)
    torch.testing.assert_close(scales.sum(1), torch.ones(6))
    with pytest.raises(ValueError, match="flip"):
        tta_probs(model, x, "rotate")


def test_rescale_views_keep_the_size_and_zoom_about_the_centre():
    x = torch.zeros(1, 3, 20, 20)
    x[..., 5:15, 5:15] = 1.0
    bigger, smaller = evaluation.rescale(x, 1.1), evaluation.rescale(x, 0.9)
    assert bigger.shape == smaller.shape == x.shape
    assert torch.equal(evaluation.rescale(x, 1.0), x)
    assert bigger.sum() > x.sum() > smaller.sum() > 0
    assert smaller[..., 0, :].abs().sum() == 0 and smaller[..., :, -1].abs().sum() == 0  # padded border
    assert len(evaluation.tta_views(x, "flip+scales")) == 4


def test_predict_loader_applies_tta_to_every_batch_and_keeps_targets():
    model = trained_like()
    torch.manual_seed(2)
    images, labels = torch.randn(10, 3, SIZE, SIZE), torch.arange(10) % len(CLASSES)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images, labels), batch_size=4)
    probs, targets, _ = evaluation.predict(model, loader, "cpu", tta="flip")
    assert targets == labels.tolist()
    np.testing.assert_allclose(probs, tta_probs(model, images, "flip").numpy(), atol=1e-6)
    ids = [(img, f"img{i}.jpg") for i, img in enumerate(images)]
    id_loader = torch.utils.data.DataLoader(ids, batch_size=4)
    _, id_targets, _ = evaluation.predict(model, id_loader, "cpu")
    assert id_targets == [f"img{i}.jpg" for i in range(10)]


# --- ensembles ------------------------------------------------------------------------------------

def test_ensemble_is_the_weighted_mean_and_checks_shapes_and_classes():
    a = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    b = np.array([[0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    np.testing.assert_allclose(predict.ensemble([a, b]), (a + b) / 2)
    np.testing.assert_allclose(predict.ensemble([a, b], weights=[3, 1]), 0.75 * a + 0.25 * b)
    np.testing.assert_allclose(predict.ensemble([a, b], classes=[list("xyz"), list("xyz")]), (a + b) / 2)
    assert predict.ensemble([a, b]).argmax(1).tolist() == [1, 2]
    with pytest.raises(ValueError, match="shape"):
        predict.ensemble([a, b[:, :2]])
    with pytest.raises(ValueError, match="classes differ"):
        predict.ensemble([a, b], classes=[list("xyz"), list("xzy")])
    with pytest.raises(ValueError, match="weight"):
        predict.ensemble([a, b], weights=[1])
    with pytest.raises(ValueError, match="no probability"):
        predict.ensemble([])


def test_an_export_is_byte_reproducible(tmp_path):
    """The same weights give the same model.pt, byte for byte, wherever it is written: the file is
    serialised in memory (its zip records are not named after the atomic write's temporary file)."""
    model = trained_like()
    a = checkpoints.export_model(tmp_path / "a" / "model.pt", model, CLASSES, rebuild_params())
    b = checkpoints.export_model(tmp_path / "b" / "model.pt", model, CLASSES, rebuild_params())
    assert a.read_bytes() == b.read_bytes()
    checkpoints.save_checkpoint(tmp_path / "a" / "best.pt", {"model_state": model.state_dict(), "classes": CLASSES})
    checkpoints.save_checkpoint(tmp_path / "b" / "best.pt", {"model_state": model.state_dict(), "classes": CLASSES})
    assert (tmp_path / "a" / "best.pt").read_bytes() == (tmp_path / "b" / "best.pt").read_bytes()
