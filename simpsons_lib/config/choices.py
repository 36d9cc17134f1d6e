"""Every list of allowed values, defined once: the parameter schema checks against them and the code
that acts on a value imports the same tuple (torch-free)."""

DATASETS = ("kaggle", "demo")
ON_BAD_IMAGE = ("raise", "skip")
ARCHITECTURES = ("simple_cnn", "mid_cnn", "transfer")
FINETUNE_MODES = ("last_stage", "full")
WEIGHTS_FALLBACKS = ("error", "random")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "cosine", "step", "warmup_cosine")
MONITORS = ("val_micro_f1", "val_macro_f1", "val_loss")
DEVICES = ("auto", "cpu", "cuda", "mps")
AMP_MODES = ("auto", "bf16", "fp16", "off")
LOADERS = ("auto", "per_sample", "device_batches")
TTA_MODES = ("none", "flip", "flip+scales")  # cheapest first: of equal scores, the earlier is chosen
TTA_AUTO = "auto"  # submission_tta: the mode the validation split prefers (reporting.report.chosen_tta)
SUBMISSION_TTA = (TTA_AUTO, *TTA_MODES)
STRONG_GEOMETRY = ("worst", "all")
SAMPLING = ("natural", "balanced")
SPLITS = ("random", "grouped")
TRACKING = ("none", "tensorboard")
