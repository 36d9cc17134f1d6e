# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags
#     notebook_metadata_filter: kernelspec,language_info,simpsons,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python (simpsons-study)
#     language: python
#     name: simpsons-study
#   language_info:
#     name: python
#   simpsons:
#     kind: report
# ---

# %% [markdown]
# # 05 · The study: evolution of model quality, and the submission
#
# Every training run side by side on the validation split (the *evolution of model quality*), with an ensemble of runs when the profile names one, the per-class picture across runs, what the best model looks at (Grad-CAM), test-time augmentation, and the submission (`submission.csv`). When the profile names an `answers` file (true test labels, `Id,Expected`), the submission is scored against it.

# %% tags=["parameters"]
profile: str = "demo"   # a folder of params/: demo, full, smoke or your own
run: str = "report"        # a run of that profile: params/<profile>/<run>.yaml
overrides: dict = {}   # e.g. {"submission_run": "mid_cnn"}: changed values make a run of its own

# %%
from simpsons_lib.config import console, files, params, paths
from simpsons_lib.data import layout
from simpsons_lib.training import devices
from simpsons_lib.inference import submission
from simpsons_lib.reporting import gradcam, narrative, notes, plots, report, tables

console.setup_logging()

# %%
p = params.resolve(profile, run, overrides)
rp = paths.run_paths(p)
notes.page_notes(p)

# %% [markdown]
# The run's parameters, resolved as the pipeline resolves them (schema defaults, then the profile's `_common.yaml`, its run file, then `overrides`) and checked: an unknown key or a bad value stops here.

# %%
device = devices.select_device(p.device)
p

# %% [markdown]
# ## Evolution of model quality
# The runs in study order. With `ensemble`, the mean of the named runs' probabilities is validated on the same images and joins the table as run `ensemble`. `micro_f1` and `macro_f1` are the validation scores at the best epoch, which is chosen on that same split; `last_epoch_*` are the last epoch's, so the selection effect shows. `test_micro_f1` and `test_macro_f1` score every run on the held-out test images against the profile's true test labels (`answers`), each predicted with the test-time augmentation in `test_tta`: the one the report's `submission_tta` names, or with `auto` the mode with the run's best validation micro-F1, as the submission's is chosen below; without an `answers` file there are none, and the table says so once, above it.

# %%
metrics = tables.load_run_metrics(rp.study, p.runs)
metrics.update(report.ensemble_metrics(rp.study, p.ensemble, device))

# %%
test_answers = layout.answers_file(p, layout.find_study_layout(p))
scores = report.test_scores(rp.study, p, p.runs, p.ensemble, device, test_answers)

# %%
table = tables.metrics_table(metrics, scores)
files.write_csv(rp.study.evolution_csv, table)
tables.show(table)

# %%
fig = plots.f1_evolution(table)
plots.save(fig, rp.figure("f1_evolution"))

# %%
print(narrative.describe_runs(metrics))

# %% [markdown]
# ## Per-class F1 across runs
# Hardest classes on top: where each step of the study helped, and where it did not. Classes without a validation image are shown as not validated.

# %%
per_class = tables.per_class_f1_table(metrics)
fig = plots.per_class_f1_heatmap(per_class)
plots.save(fig, rp.figure("per_class_f1_across_runs"))

# %% [markdown]
# ## Does the per-class augmentation plant a cue?
# The recipe gives its weakest classes (those of `worst_from_run`) a strong policy: rotation, flip and translation, and stronger colour jitter. If anything the policy does to an image could be read by the model (a black corner, a tilt), the model would learn *"tilted means one of those classes"* instead of the characters, and on clean validation images it would stop predicting them. For each augmented run: the strong classes' validation images, how often the run predicts them (on the plain validation images, and on the same images given the strong geometry), how many of those are right, and their mean F1 in the run they were chosen from and in this run. A miss alone does not tell a cue from rarity: the row below an augmented run (`control of`) is its control when the study has one, a run trained like it without the strong policy (`augment: false`, every other parameter that shapes the weights equal: a run of the profile, or a sweep point), measured on the same classes and images.

# %%
cue = report.strong_class_cue(rp.study, metrics, device)
tables.show(cue)

# %%
narrative.describe_strong_cue(cue, p.profile)

# %% [markdown]
# ## Validation and near-duplicate frames
# Frames taken from video come in runs of near-identical images (the EDA's audit). For each run: how many of its validation images have a near-duplicate among its training images, and how it scores on those against the others. Each run of `split_runs` was trained like one of `runs` but on the other split (`split: grouped` keeps each group of near-duplicates on one side): the second table puts the two side by side, so what the random split flatters is measured, not assumed. The two splits validate on different images, so the difference also holds the noise of that draw: near-duplicates can explain at most the random split's validation images with a near-duplicate in training, each worth 1/n of micro-F1 (n: its validation images), and the words below put no more of the difference down to them.

# %%
split_metrics = tables.load_run_metrics(rp.study, p.split_runs)
validation = tables.near_duplicate_validation(rp.study, {**metrics, **split_metrics})
tables.show(validation)

# %%
comparison = tables.split_comparison(metrics, split_metrics, validation)
print(narrative.describe_splits(comparison, validation))
tables.show(comparison)

# %% [markdown]
# ## The best run

# %%
best = tables.best_run(table)
print(f"best run by validation micro-F1: {best} ({metrics[best]['title']})")

# %%
fig = plots.confusion_matrix(metrics[best], title=f"Best run ({best}): confusion matrix (validation)")
plots.save(fig, rp.figure("best_confusion_matrix"))

# %%
fig = plots.misclassified_gallery(tables.misclassified(tables.load_predictions(rp.study, best)), p.gallery_size)
plots.save(fig, rp.figure("best_misclassified"))

# %% [markdown]
# ## What a model looks at (Grad-CAM)
# Class activation maps (captum's `LayerGradCam`) for the predicted class: the most confident mistakes (red), then correct images of each confused pair (green). The map is read from the deepest stage whose map is at least 7×7 at the run's input size (a 2×2 map would paint the whole image), and it is shown over the image with an opacity that follows it, with a colour bar. The run shown is the best that really used pretrained weights; without one, the best that trained its own weights (a transfer run that fell back to random weights is not shown). Where the data folder records a box around each image's subject (`character_boxes.csv`, as the generated data writes it; outlined dashed), the table after the figure gives the share of the maps' mass inside that box against the box's share of the image, on correctly predicted validation images.

# %%
explained = report.explained_run(metrics)
model, info = report.load_run_model(rp.study, explained, device)
boxes = gradcam.load_boxes(layout.find_study_layout(p).root)
print(f"Grad-CAM of {explained} ({metrics[explained]['title']})")

# %%
fig = gradcam.gradcam_figure(model, tables.load_predictions(rp.study, explained), info["classes"],
                             info["params"]["image_size"], boxes=boxes)
plots.save(fig, rp.figure("best_gradcam"))

# %%
tables.show_values(gradcam.box_check(model, tables.load_predictions(rp.study, explained), info["classes"],
                                      info["params"]["image_size"], boxes))

# %% [markdown]
# ## Test-time augmentation
# The submission's run on its validation split with each test-time augmentation that `submission_tta` weighs (`flip`: the mean probabilities of the image and its mirror image; `flip+scales`: and of two rescaled views too). With `auto` (the default) the submission takes the mode with the best validation micro-F1, of equal ones the cheaper; a named mode is taken as it is. The sentence under the table says which, and why.

# %%
sub_run = tables.submission_run(p.submission_run, table)
tta = report.tta_table(rp.study, report.members(sub_run, p.ensemble), p.submission_tta, device)
tables.show(tta)

# %%
sub_tta = report.chosen_tta(tta, p.submission_tta)
narrative.describe_tta(tta, p.submission_tta, sub_tta)

# %% [markdown]
# ## Submission
# The submission run's model (or the ensemble's models) predicts every test image; an unreadable test image (`on_bad_image: skip`) gets the fallback prediction, the most frequent training class, and is listed. The file is checked (every Id once, known class names, the sample submission's order) before it is written.

# %%
predictions, test, classes = report.predict_test_set(rp.study, p, report.members(sub_run, p.ensemble), device, sub_tta)
predictions["Expected"].value_counts().head(10).to_frame("predicted images")

# %%
written = submission.write_submission(predictions, rp.study.submission_csv, submission.expected_ids(test),
                                     classes, submission.bad_test_ids(test))
print(f"checked and written: {written.name}")

# %% [markdown]
# The submission's record: which run made it, its rows, any fallback predictions, and its score when the profile names an `answers` file.

# %%
summary = submission.summarize(sub_run, rp.study.submission_csv, layout.answers_file(p, test.layout),
                               rp.study.submission_json, submission.fallback_ids(predictions), test.layout, sub_tta)
print(submission.describe(summary))

# %% [markdown]
# ## Saved by this notebook

# %%
print(rp.listing(extra=[rp.study.submission_csv]))
