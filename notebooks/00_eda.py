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
#     kind: eda
# ---

# %% [markdown]
# # 00 · Exploring the data
#
# What we are given, before training anything: how many images each class has, what they look like, their sizes and colour modes, and the unlabeled test set. Every statement below about the data is computed from the data the profile names (`dataset`, `data_dir`), and the first lines say which data that is.

# %% tags=["parameters"]
profile: str = "demo"   # a folder of params/: demo, full, smoke or your own
run: str = "eda"           # a run of that profile: params/<profile>/<run>.yaml
overrides: dict = {}   # e.g. {"grid_classes": 4}: changed values make a run of its own

# %%
from simpsons_lib.config import console, files, params, paths
from simpsons_lib.data import near_duplicates, study
from simpsons_lib.reporting import eda, notes, plots

console.setup_logging()

# %%
p = params.resolve(profile, run, overrides)
rp = paths.run_paths(p)
notes.page_notes(p)

# %% [markdown]
# The run's parameters, resolved as the pipeline resolves them (schema defaults, then the profile's `_common.yaml`, its run file, then `overrides`) and checked: an unknown key or a bad value stops here.

# %%
p

# %% [markdown]
# ## The dataset
# Found under the data folder; every image is decoded once here to catch empty or truncated files.

# %%
s = study.load_study(p, with_test=True, bad_images_report=rp.bad_images_csv)
print(s.describe())

# %% [markdown]
# ## Class distribution
# When the classes are imbalanced, accuracy alone hides the rare ones: the study reports macro-F1 beside micro-F1 (the share of images named right).

# %%
counts = eda.class_counts(s.index)
print(eda.describe_counts(counts))

# %%
fig = plots.class_distribution(counts)
plots.save(fig, rp.figure("class_distribution"))

# %% [markdown]
# The stratified train/validation split keeps each class's share, and gives every class with at least two images one or more validation images.

# %%
fig = plots.split_distribution(s.summary())
plots.save(fig, rp.figure("split"))

# %% [markdown]
# ## What the classes look like
# A few random images of the largest classes, then of the rarest.

# %%
fig = plots.sample_grid(s.index, counts.index[: p.grid_classes], p.grid_per_class, p.seed)
plots.save(fig, rp.figure("samples_largest"))

# %%
fig = plots.sample_grid(s.index, counts.index[-6:], p.grid_per_class, p.seed)
plots.save(fig, rp.figure("samples_rarest"))

# %% [markdown]
# ## Image sizes and modes
# The models resize every image to a square input, and any colour mode is converted to RGB when loading. Sizes and modes are read from the files' headers, of every image or of a seeded sample of `image_stats_sample` images; each table says which.

# %%
stats = eda.image_stats(s.index, p.image_stats_sample or None, p.seed)
eda.size_table(stats, len(s.index))

# %%
eda.mode_table(stats, len(s.index))

# %%
fig = plots.image_size_scatter(stats)
plots.save(fig, rp.figure("image_sizes"))

# %% [markdown]
# ## Near-duplicate frames
# Frames taken from video come in runs of near-identical images. A random split puts copies of one frame on both sides, and validation then partly scores memory. Every image gets a perceptual hash (a DCT hash of its 32 px grey version, 195 bits, stored once in the image cache's folder); two images whose hashes differ in at most `near_duplicate_bits` bits are near-duplicates, and the connected pairs form groups. A copy of an image keeps its class, so a pair that joins two classes is likely a false match (two different images close in the hash, e.g. through a shared background); the audit counts them. The table gives the groups, and what the recipe's random split and the grouped split (`split: grouped`, which keeps each group on one side) make of them; where the data lists copies it planted itself (the drawn stand-in's `frame_copies.csv`), it also scores the audit against them.

# %%
audit = study.near_duplicate_audit(s, p)
audit_table = near_duplicates.audit_table(audit)
files.write_csv(rp.table("near_duplicates"), audit_table, index=True)
audit_table

# %%
print(near_duplicates.describe(audit[p.split], p.split))

# %% [markdown]
# The closest pairs among the training images, with their distance in bits (the groups are listed in `metrics/eda_near_duplicate_groups.csv`):

# %%
files.write_csv(rp.table("near_duplicate_groups"), s.near_duplicates.group_table())
fig = plots.near_duplicate_pairs(s.near_duplicates.closest_pairs(), p.near_duplicate_bits, n=p.grid_per_class * 3)
plots.save(fig, rp.figure("near_duplicate_pairs"))

# %% [markdown]
# The least alike pairs that still count, nearest the threshold: if these are different frames rather than copies of one, `near_duplicate_bits` is too high for this data.

# %%
fig = plots.near_duplicate_pairs(s.near_duplicates.least_alike_pairs(p.grid_per_class * 3), p.near_duplicate_bits,
                                 title=f"The least alike pairs that count (at most {p.near_duplicate_bits} bits apart)")
plots.save(fig, rp.figure("near_duplicate_threshold_pairs"))

# %% [markdown]
# Test images with a near-duplicate among the training images (left: the test image's Id; listed in `metrics/eda_test_near_duplicates.csv`): a model may have seen them already.

# %%
test_pairs = s.near_duplicates.closest_pairs(test=True)
files.write_csv(rp.table("test_near_duplicates"), test_pairs)
fig = plots.near_duplicate_pairs(test_pairs, p.near_duplicate_bits, n=p.grid_per_class * 3, test=True,
                                 title=f"Test images and their nearest training image (at most {p.near_duplicate_bits} bits)")
plots.save(fig, rp.figure("test_near_duplicate_pairs"))

# %% [markdown]
# ## The test set
# Unlabeled images; the submission names one class per file (`Id,Expected`).

# %%
fig = plots.image_grid(list(s.test["path"][:12]), list(s.test["Id"][:12]), ncols=6)
plots.save(fig, rp.figure("test_preview"))

# %% [markdown]
# ## Saved by this notebook

# %%
print(rp.listing())
