"""The study in words, read from the runs and their models: what a model is and trains, what its
augmentation and batch mixing do, and the evolution across runs. Nothing here shapes a model's weights."""

from __future__ import annotations

import html

from torch import nn

from ..training.models import TransferModel, count_parameters, is_weights_path
from ..training.transforms import MILD, STRONG


def trainable_modules(model: nn.Module) -> list[str]:
    """Top-level names of the parameters that train, e.g. ``['net.layer4', 'net.fc']``."""
    names = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            parts = name.split(".")
            prefix = ".".join(parts[:3] if parts[1] == "features" else parts[:2])
            if prefix not in names:
                names.append(prefix)
    return names


def summary(model: nn.Module, input_size: int) -> str:
    """A short printable summary, read from the model: its parameter counts and, for the study's CNNs,
    one line per part (blocks and channels, classifier widths); for transfer models what trains."""
    counts = count_parameters(model)
    head = (f"{type(model).__name__} at {input_size}px: {counts['total']:,} parameters, "
            f"{counts['trainable']:,} trainable, {counts['frozen']:,} frozen")
    if isinstance(model, TransferModel):
        return head + f"\nbackbone {model.backbone_name}; trainable: {', '.join(trainable_modules(model))}\nhead: {head_shape(model)}"
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    extras = [type(m).__name__ for m in model.classifier if isinstance(m, (nn.BatchNorm1d, nn.Dropout))]
    channels = "→".join(str(c) for c in [convs[0].in_channels, *(c.out_channels for c in convs)])
    return (head + f"\nfeatures: {len(convs)} blocks Conv{convs[0].kernel_size[0]}x{convs[0].kernel_size[1]} "
            f"(padding {convs[0].padding[0]}) → BatchNorm → ReLU → MaxPool, channels {channels}"
            f"\nclassifier: {' → '.join(str(w) for w in [linears[0].in_features, *(m.out_features for m in linears)])}"
            + (f" (with {', '.join(dict.fromkeys(extras))})" if extras else ""))


def describe_weights(weights: str | None) -> str:
    if weights is None:
        return "random initial weights (weights: null): no learned features to transfer"
    if is_weights_path(weights):
        return f"the state-dict file {weights}"
    return f"torchvision's {weights} weights (ImageNet)"


def head_shape(model: TransferModel) -> str:
    """The new head's widths, read from its linear layers, e.g. ``2048 -> 512 -> 42``."""
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    return " -> ".join(str(w) for w in [linears[0].in_features, *(m.out_features for m in linears)])


def describe_transfer(model: nn.Module, weights: str | None) -> str:
    """What a transfer model trains, from the model itself (any other model: its summary line)."""
    if not isinstance(model, TransferModel):
        return summary(model, 0).splitlines()[0]
    counts = count_parameters(model)
    held = (f"random initial weights, not {weights} (weights_fallback: random; the note at the top of the page "
            "says why)" if model.weights_fallback_reason else describe_weights(weights))
    trained = ("the whole network" if counts["frozen"] == 0 and counts["trainable"] else
               ", ".join(trainable_modules(model)))
    return (f"{model.backbone_name} with {held}.\n"
            f"Trained: {trained} ({counts['trainable']:,} parameters); frozen: "
            f"{counts['frozen']:,} parameters.\nNew head: {head_shape(model)}.")


def describe_policies() -> str:
    """The two policies in words (for notebooks and reports)."""
    return (f"strong: colour jitter {STRONG['jitter']}, rotation up to {STRONG['degrees']:g}°, horizontal flip "
            f"(p={STRONG['flip']}), translation up to {STRONG['translate']:.0%}; mild: colour jitter {MILD['jitter']}")


def describe_batch_mixing(mixup_alpha: float, cutmix_alpha: float) -> str:
    """The batch mixing in words."""
    parts = [f"MixUp (alpha {mixup_alpha:g})" if mixup_alpha > 0 else "",
             f"CutMix (alpha {cutmix_alpha:g})" if cutmix_alpha > 0 else ""]
    parts = [x for x in parts if x]
    if not parts:
        return "No batch mixing: every training image keeps its own label."
    how = " or ".join(parts) + (", one of the two per batch at random" if len(parts) == 2 else ", every batch")
    return (f"Batch mixing: {how}; the loss takes the mixed soft labels, the training accuracy counts each "
            "image's own label.")


def describe_augmentation(p, worst: list[str]) -> str:
    """What the run's augmentation does, in words."""
    if not p["augment"]:
        return "No augmentation: every training image is only resized and normalised."
    rule = " and ".join(filter(None, [f"the {p['worst_k']} weakest" if p["worst_k"] else "",
                                      f"those below F1 {p['worst_below']}" if p["worst_below"] is not None else ""]))
    source = f" ({rule} of run {p['worst_from_run']})" if p["worst_from_run"] else ""
    return (f"Per-class augmentation ({describe_policies()}).\nStrong policy for {len(worst)} classes{source}: "
            f"{', '.join(worst) or 'none'}; mild for the others.")


def describe_runs(metrics_by_run: dict[str, dict]) -> str:
    """The evolution in words, as measured: each run's micro- and macro-F1 and its gain over the step
    before (an ensemble: over the best run it could have been instead), and which transfer runs had no
    pretrained weights (so show mechanics, not transfer; why is on their own pages)."""
    runs = list(metrics_by_run)
    if not runs:
        return "No runs."
    lines = []
    for i, run in enumerate(runs):
        m = metrics_by_run[run]
        if m.get("members"):
            singles = [r for r in runs if not metrics_by_run[r].get("members")]
            before = max(singles, key=lambda r: metrics_by_run[r]["micro_f1"]) if singles else None
            against = f"the best single run, {before}"
        else:
            before = runs[i - 1] if i else None
            against = f"{before}, the step before"
        delta = (f" ({m['micro_f1'] - metrics_by_run[before]['micro_f1']:+.3f} micro-F1 over {against})"
                 if before else "")
        lines.append(f"{m['title']}: micro-F1 {m['micro_f1']:.3f}, macro-F1 {m['macro_f1']:.3f}{delta}")
        p = m.get("params", {})
        if p.get("arch") == "transfer" and not m.get("weights_used", p.get("weights")):
            lines.append(f"  {run} ran without pretrained weights: its {p.get('backbone')} features started "
                         "random, so it shows the mechanics of fine-tuning, not transfer learning.")
    best = max(runs, key=lambda r: metrics_by_run[r]["micro_f1"])
    lines.append(f"Best by validation micro-F1: {metrics_by_run[best]['title']}.")
    return "\n".join(lines)


class Paragraphs(str):
    """Words shown as paragraphs on a page, one per line (HTML, escaped: run and class names are the
    user's), and as plain text elsewhere; never a monospace block."""

    def _repr_html_(self) -> str:
        return "".join(f"<p>{html.escape(line)}</p>" for line in self.splitlines() if line.strip())

    def __repr__(self) -> str:
        return str(self)


def describe_tta(table, setting: str, chosen: str) -> Paragraphs:
    """One sentence under the report's TTA table (``report.tta_table``): which test-time augmentation the
    submission uses (``chosen``, by ``report.chosen_tta``), on which run's validation split it was weighed,
    and why: the best validation micro-F1 (``submission_tta: auto``; of equals the cheaper), or the
    parameter naming it."""
    by_mode = {row["tta"]: row for row in table.to_dict("records")}
    pick, plain = by_mode[chosen], by_mode["none"]
    where = (f"{plain['run']}'s {plain['split']} validation split ({plain['validation images']} images, the same "
             "that chose the best epoch)")
    if setting == "auto" and chosen == "none":
        text = ("The submission uses no test-time augmentation (submission_tta: auto): no mode beats the plain "
                f"validation micro-F1 of {plain['micro_f1']:.4f} on {where}, and of equal scores the cheaper wins.")
    elif setting == "auto":
        text = (f"The submission uses {chosen} test-time augmentation (submission_tta: auto): it has the best "
                f"validation micro-F1 on {where}, {pick['micro_f1']:.4f} against {plain['micro_f1']:.4f} without.")
    else:
        figures = (f"{pick['micro_f1']:.4f} with it, {plain['micro_f1']:.4f} without" if chosen != "none"
                   else f"{plain['micro_f1']:.4f}")
        used = "no test-time augmentation" if chosen == "none" else f"{chosen} test-time augmentation"
        text = (f"The submission uses {used} because the parameter submission_tta names it, not because of "
                f"these figures (validation micro-F1 on {where}: {figures}); submission_tta: "
                "auto lets the validation split choose.")
    return Paragraphs(text)


CONTROL_SWEEP = 'make sweep PROFILE={profile} RUN={run} GRID="augment=false"'


def describe_strong_cue(table, profile: str = "<profile>") -> Paragraphs:
    """What the strong-class cue table (``report.strong_class_cue``) concludes, one sentence per augmented
    run naming what was measured and what it concludes. A miss (the strong classes predicted for fewer than
    half their images) is put down to the policy only against a control (the same run without it, the row
    ``control of`` the run): without one, rarity and a cue cannot be told apart. Tilted images drawn to the
    strong classes (more than twice their true share, and than the control's) are a geometry cue, and the
    sentence says what to do about it (``strong_geometry: all``). Without a control, the sentence gives the
    command that trains one (a sweep point of ``profile``, which the report then finds)."""
    if table is None or len(table) == 0:
        return Paragraphs("No run gave any class the strong policy: nothing to check.")
    rows = table.to_dict("records")
    controls = {r["control of"]: r for r in rows if _given(r.get("control of"))}
    lines = []
    for row in rows:
        if _given(row.get("control of")):
            continue
        control = controls.get(row["run"])
        before, after = row["their F1 before"], row["their F1 after"]
        f1 = (f"; their mean F1 {before:.3f} in {row['taken from']}, {after:.3f} here" if _given(before)
              and _given(after) else "")
        lines.append(f"{row['run']} ({row['strong classes']} strong classes{f1}): {_cue_verdict(row, control, profile)}")
    return Paragraphs("\n".join(lines))


def _given(value) -> bool:
    return value is not None and value == value and value != ""  # not None, NaN or empty


def _times(n: int) -> str:
    return f"{n} time" if n == 1 else f"{n} times"


def _cue_verdict(row: dict, control: dict | None, profile: str) -> str:
    occur, predicted, right = row["validation images of them"], row["predicted as them"], row["right"]
    share, tilted = row["true share"], row["predicted share, tilted images"]
    spread, classes = row.get("classes it predicts", 0), row.get("classes", 0)
    plain = f"predicted {_times(predicted)} for {occur} images ({right} right)"
    tilt = f"tilted images predicted as them {tilted:.0%} of the time against a true share of {share:.0%}"
    if control is not None:
        plain += f", the control {control['run']} {_times(control['predicted as them'])} ({control['right']} right)"
        tilt += f", the control {control['predicted share, tilted images']:.0%}"
    if classes and spread < classes / 2:
        return (f"Inconclusive: the strong classes are {plain}, but the run predicts only {spread} of {classes} "
                "classes at all, so that says nothing about a cue.")
    geometry = bool(share) and tilted > 2 * share and (control is None
                                                       or tilted > 2 * control["predicted share, tilted images"])
    missed = bool(occur) and predicted < 0.5 * occur
    if geometry:
        advice = ("; strong_geometry is already all, so the tilt itself should mark no class: look at the strong "
                  "colour jitter" if row.get("strong geometry") == "all" else
                  "; to remove it, set strong_geometry: all (every class gets the rotation, flip and translation, "
                  "so a tilt no longer marks these classes)")
        if control is not None:
            tilt = tilt.replace(", the control ", f", the control {control['run']} ")
        against = "" if control is not None else " (no control run shows what tilting does without the policy)"
        return f"A cue remains: {tilt}, so the run reads the strong policy's geometry{against}{advice}."
    if not missed:
        return f"No cue: {plain}, and {tilt}."
    if control is None:
        what = "Not predicted" if predicted == 0 else f"Rarely predicted ({_times(predicted)} for {occur} images)"
        return (f"{what}, and {tilt}: not a geometry cue; whether it is a cue at all is open, since without a "
                "control run (the same run trained without the strong policy) rarity and a cue cannot be told "
                f"apart (to train one: {CONTROL_SWEEP.format(profile=profile, run=row['run'])}).")
    rarity, policy = occur - control["right"], max(0, control["right"] - right)  # images of them missed
    if rarity >= policy:
        return (f"Mostly rarity, not a cue: {plain}, so the control misses {rarity} of them too and the policy "
                f"costs {policy} more; {tilt}: not a geometry cue.")
    return (f"The policy costs them, though not by a geometry cue: {plain}, and {tilt}; the strong colour jitter "
            "and the harder training images of these classes remain as causes (augment: false drops the policy).")


def describe_splits(comparison, validation) -> str:
    """The near-duplicate section in words: how much of each run's validation has a near-copy in training,
    how it scores on those against the others, and what each run scores under the two splits. A difference
    between the splits is put down to near-duplicates only as far as they can explain it: each validation
    image of the random split with a near-duplicate in training is worth 1/n of its micro-F1 (n: its
    validation images); the rest is the noise of validating on other images."""
    lines = []
    for run, row in validation.iterrows():
        share = row["with a near-duplicate in training"] / max(1, row["validation images"])
        gap = ("" if row["with a near-duplicate in training"] == 0 else
               f"; micro-F1 {row['micro-F1 on those']:.3f} on those against {row['micro-F1 on the others']:.3f} "
               "on the others")
        lines.append(f"{run} ({row['split']} split): {row['with a near-duplicate in training']} of "
                     f"{row['validation images']} validation images ({share:.0%}) "
                     f"{'has' if row['with a near-duplicate in training'] == 1 else 'have'} a near-duplicate in "
                     f"training{gap}.")
    for row in comparison.to_dict("records"):
        diff = row["micro-F1 difference (random - grouped)"]
        lines.append(f"{row['model']}: micro-F1 {row['random: micro-F1']:.3f} under the random split "
                     f"({row['random split run']}) against {row['grouped: micro-F1']:.3f} under the grouped split "
                     f"({row['grouped split run']}), a difference of {diff:+.3f}; macro-F1 "
                     f"{row['random: macro-F1']:.3f} against {row['grouped: macro-F1']:.3f}. "
                     + _split_difference(diff, row))
    if comparison.empty:
        lines.append("No run of this profile was trained under the other split (report parameter split_runs).")
    return "\n".join(lines)


def _split_difference(diff: float, row: dict) -> str:
    """What the near-duplicates can explain of a difference ``diff`` between the splits (``row``: a row of
    ``tables.split_comparison``), and what they cannot."""
    twins, bound = (row.get("random: validation images with a near-duplicate in training"),
                    row.get("at most explained by near-duplicates"))
    n = row["random: validation images"]
    if twins is None or bound is None or twins != twins or bound != bound:  # None or NaN: not audited
        return ("How much of it near-duplicates explain is not known (the random split's predictions carry no "
                "near-duplicate audit); the two splits also validate on different images.")
    twins = int(twins)
    if twins == 0:
        return ("No validation image of the random split has a near-duplicate in training, so none of the "
                "difference comes from near-duplicates: it is the noise of validating on other images.")
    why = (f"{twins} of the random split's {n} validation images {'has' if twins == 1 else 'have'} a "
           f"near-duplicate in training, each worth 1/{n} of micro-F1")
    if diff <= 0:
        return (f"The random split does not score higher here, though near-duplicates could add up to "
                f"{bound:.3f} ({why}).")
    if diff <= bound:
        return (f"Near-duplicates can explain at most {bound:.3f} ({why}): all of it, or none of it (the noise of "
                "validating on other images).")
    return (f"Near-duplicates can explain at most {bound:.3f} of it ({why}); the other {diff - bound:.3f} is the "
            "noise of validating on other images.")
