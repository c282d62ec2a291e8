# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Evaluation: from pixels to nuclei
#
# **What you will learn**
# - how the 3-class output (background, interior, boundary) becomes one label per nucleus:
#   interior seeds grown by a watershed;
# - the instance metrics used for nuclei: IoU between objects, one-to-one matching at
#   $\mathrm{IoU} \ge \tau$, precision, recall, F1, average precision and the Cell Tracking
#   Challenge's SEG;
# - to implement the IoU matrix (exercise 1) and the matching counts (exercise 2);
# - to read an error gallery: missed nuclei, spurious ones, merges and splits;
# - how GRUU-Net compares with a U-Net of the same size, trained the same way.
#
# **Time:** about 40 minutes. **Prerequisites:** notebook 04 (a trained network).

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import ndimage as ndi

from gruunet_edu.data import SyntheticNucleiDataset
from gruunet_edu.evaluation.evaluate import predict_samples
from gruunet_edu.evaluation.inference import predict_instances
from gruunet_edu.evaluation.metrics import (
    average_precision,
    evaluate_dataset,
    evaluate_instances,
    iou_matrix,
    match_instances,
)
from gruunet_edu.exercises import hint, use_student_or_reference
from gruunet_edu.exercises.bonus import check_half_nucleus, reference_half_nucleus
from gruunet_edu.exercises.nb5_evaluation import (
    check_instance_iou,
    check_match_counts,
    reference_match_counts,
)
from gruunet_edu.models import count_parameters
from gruunet_edu.training.pretrained import course_model
from gruunet_edu.viz.plots import error_examples, error_gallery

_ = torch.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. A trained network and test images
#
# `course_model()` loads the network notebook 04 trained, from the cache folder where 04 left it
# (`$GRUUNET_CACHE`, default `~/.cache/gruunet-edu`); only if notebook 04 has not run yet does it
# train that same run now, once (here and in notebook 06 it then loads in a second). The test
# images come from a seed stream that training never saw.

# %%
# NBVAL_IGNORE_OUTPUT
model = course_model()

# %%
test_set = SyntheticNucleiDataset(6, size=128, seed=0, split="test", pool=6)
samples = [test_set.sample(i) for i in range(len(test_set))]
print("test images:", len(samples), "of", samples[0].image.shape)
print("nuclei in the test set:", sum(int(s.labels.max()) for s in samples))

# %% [markdown]
# ## 2. From probabilities to instances
#
# The network gives per pixel $p_\mathrm{bg}, p_\mathrm{int}, p_\mathrm{bnd}$. Touching nuclei
# share a boundary, so their *interiors* are separate. Instances are recovered in three steps
# (`gruunet_edu.evaluation.postprocess`):
#
# 1. **seeds**: the interior $p_\mathrm{int} > 0.5$ is split into one seed per nucleus. Its
#    connected pieces would do if the network always predicted the whole boundary between two
#    touching nuclei (it was trained on a boundary widened to a few pixels there, notebook 00);
#    a small network still often leaves a thin neck of interior between them, so the
#    default (`seeds="distance"`) takes the maxima of the distance from each interior pixel to the
#    interior's edge: one seed per round bulge, even when two bulges are joined by a neck;
# 2. **growth**: a watershed grows every seed into the foreground $1 - p_\mathrm{bg} > 0.5$, so
#    the pixels between two nuclei are split along the valley between their seeds;
# 3. **clean-up**: foreground islands without a seed become objects, tiny objects are removed.

# %%
sample = samples[0]
pred_labels, probs = predict_instances(model, sample.image)
print("probabilities:", probs.shape, "| instance labels:", pred_labels.shape, pred_labels.dtype)

# %%
# NBVAL_IGNORE_OUTPUT
pieces, n_pieces = ndi.label(probs[1] > 0.5)
print("interior pieces:", n_pieces, "| instances:", int(pred_labels.max()), "| true nuclei:",
      int(sample.labels.max()))

# %%
fig, axes = plt.subplots(1, 5, figsize=(15, 3.4))
panels = (
    (sample.image, "image", "gray"),
    (probs[1], "p(interior)", "magma"),
    (probs[2], "p(boundary)", "magma"),
    (pred_labels, "predicted instances", "tab20"),
    (sample.labels, "true instances", "tab20"),
)
for ax, (array, title, cmap) in zip(axes, panels, strict=True):
    shown = np.ma.masked_equal(array, 0) if cmap == "tab20" else array
    ax.imshow(shown, cmap=cmap, interpolation="nearest")
    ax.set_title(title)
    ax.axis("off")
plt.tight_layout()
plt.show()


# %% [markdown]
# ## 3. Measuring instances
#
# Pixel Dice can be high while two touching nuclei are merged into one object. Instance metrics
# count *objects*. For a true object $A$ and a predicted object $B$:
#
# $$
# \mathrm{IoU}(A, B) = \frac{|A \cap B|}{|A \cup B|}
#   = \frac{|A \cap B|}{|A| + |B| - |A \cap B|} .
# $$
#
# A pair is a **match** at threshold $\tau$ when $\mathrm{IoU} \ge \tau$, each object matched at
# most once. Matched pairs are true positives (TP), unmatched predictions false positives (FP),
# unmatched true objects false negatives (FN). For $\tau > 0.5$ the matching is unique: if
# $\mathrm{IoU}(A, B) > 0.5$ then $B$ covers more than half of $A \cup B$, so no other object
# disjoint from $B$ can do the same with $A$. At exactly $\tau = 0.5$ two objects can tie (a
# 2-pixel nucleus predicted as two 1-pixel objects has IoU 0.5 with both), and only one of them
# is matched. From the counts:
#
# $$
# \text{precision} = \frac{TP}{TP + FP}, \quad \text{recall} = \frac{TP}{TP + FN}, \quad
# F_1 = \frac{2\,TP}{2\,TP + FP + FN}, \quad AP_\tau = \frac{TP}{TP + FP + FN} .
# $$
#
# $AP_\tau$ of one image is the measure of the 2018 Data Science Bowl and of StarDist; its mean
# over $\tau = 0.5, 0.55, \dots, 0.95$ rewards precise outlines. Over several images there are
# two ways to combine it: the Data Science Bowl averaged the per-image values, while
# `evaluate_dataset` pools the counts TP, FP, FN of all images first (every nucleus weighs the
# same, not every image); section 4 prints both. SEG (Cell Tracking Challenge)
# averages, over true objects, the IoU with the predicted object that covers more than half of it.
#
# ### Exercise 1: the IoU matrix
# Write `student_instance_iou(gt, pred)`: rows are the true objects, columns the predicted ones,
# both in increasing label order, background (0) left out. Labels need not be consecutive.

# %% tags=["exercise"]
def student_instance_iou(gt, pred):
    """IoU of every true object (rows) with every predicted object (columns)."""
    raise NotImplementedError("Student exercise: build the IoU matrix")


# %% tags=["check"]
check_instance_iou(student_instance_iou)
# hint("instance_iou")  # uncomment for a hint; each call shows the next one

# %% [markdown]
# ### Exercise 2: counting matches
# Write `student_match_counts(iou, tau)` for $\tau \ge 0.5$: return `(tp, fp, fn)` from an IoU
# matrix of shape `(n_true, n_pred)` (either may be 0). A pair at exactly $\tau$ is a match, and
# each object is matched at most once (mind the tie at $\tau = 0.5$).

# %% tags=["exercise"]
def student_match_counts(iou, tau=0.5):
    """(TP, FP, FN) of the matching at IoU >= tau (tau >= 0.5)."""
    raise NotImplementedError("Student exercise: count TP, FP and FN")


# %% tags=["check"]
check_match_counts(student_match_counts)
# hint("match_counts")

# %% [markdown]
# Your functions (or the reference, if they do not pass yet) on the first test image, next to
# the package's `match_instances`, and the AP curve over $\tau$:

# %%
instance_iou = use_student_or_reference(student_instance_iou, iou_matrix)
match_counts = use_student_or_reference(student_match_counts, reference_match_counts)

iou = instance_iou(sample.labels, pred_labels)
n_true = len(np.unique(sample.labels[sample.labels > 0]))  # labels need not be consecutive
n_pred = len(np.unique(pred_labels[pred_labels > 0]))
print("IoU matrix: one row per true nucleus, one column per prediction:",
      iou.shape == (n_true, n_pred))
taus = np.round(np.arange(0.5, 1.0, 0.05), 2)
ap_yours = []
for tau in taus:
    tp, fp, fn = match_counts(iou, tau)
    ap_yours.append(tp / (tp + fp + fn) if tp + fp + fn else 1.0)
result = match_instances(sample.labels, pred_labels, tau=0.5)
print("at tau = 0.5 the same counts as the package:", match_counts(iou, 0.5) == (
    result.tp, result.fp, result.fn))
package_ap = average_precision(sample.labels, pred_labels, taus)["ap"]
print("AP curve the same as the package:", np.allclose(ap_yours, package_ap))

fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(taus, ap_yours, "o-")
ax.set_xlabel("IoU threshold tau")
ax.set_ylabel("AP = TP / (TP + FP + FN)")
ax.set_ylim(0, 1)
ax.set_title("stricter thresholds ask for more precise outlines")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. The whole test set
#
# `evaluate_dataset` pools the object counts of all images before taking ratios. The mean of
# the per-image values (the Data Science Bowl's way) weighs an image with 3 nuclei as much as one
# with 30; both are printed.
#
# Here every image is predicted once, at its own scale, so that you see what the network itself
# gives. `gruunet-edu predict` and `evaluate` do two things more: they resize an image whose
# nuclei are of another size than the training data's (`diameter="auto"`) and average the
# prediction over the image's eight turns and flips (`tta=True`, eight forward passes instead of
# one). `predict_samples(model, samples, diameter="auto", tta=True)` predicts the same way;
# `benchmarks/bench_train.py` measures what each of the two adds.

# %%
predictions = predict_samples(model, samples)  # instance labels of every test image
truths = [s.labels for s in samples]
scores = evaluate_dataset(truths, predictions)
print("true nuclei:", scores["n_true"])
for key, threshold in (("dice", 0.85), ("f1_50", 0.6), ("ap50", 0.45), ("seg", 0.55)):
    print(f"{key} >= {threshold}: {scores[key] >= threshold}")

# %%
# NBVAL_IGNORE_OUTPUT
per_image = [evaluate_instances(t, p) for t, p in zip(truths, predictions, strict=True)]
print(f"AP@0.5, counts pooled over images: {scores['ap50']:.3f}")
print(f"AP@0.5, mean of the per-image values: {np.mean([m['ap50'] for m in per_image]):.3f}")
print(f"mean AP, pooled: {scores['mean_ap']:.3f}; per-image mean: "
      f"{np.mean([m['mean_ap'] for m in per_image]):.3f}")

# %% [markdown]
# ## 5. Error gallery
#
# Numbers say *how many* errors, pictures say *which kind*. At $\tau = 0.5$ every unmatched
# true nucleus is missed and every unmatched prediction is spurious; `error_examples` names
# what happened: a **miss** (nothing predicted there), a **false detection** (nothing true
# there), a **merge** (one prediction covering several nuclei), a **split** (one nucleus cut into
# several predictions) or a **poor overlap** (the right object with an outline too far off).
# Green: true outline; magenta: predicted outline.

# %%
# NBVAL_IGNORE_OUTPUT
errors = error_examples([s.image for s in samples], truths, predictions, tau=0.5)
kinds = ("missed", "false detection", "merged", "split", "poor overlap")
counts = {name: sum(e["name"] == name for e in errors) for name in kinds}
print("predicted nuclei:", scores["n_pred"], "| errors at tau = 0.5:", len(errors))
for name in kinds:
    print(f"{name:>16}: {counts[name]}")
print("most frequent kind:", max(kinds, key=counts.get) if errors else "none")
print("merges vs splits:", counts["merged"], "vs", counts["split"])
per_image_counts = [(int(len(np.unique(t[t > 0]))), int(len(np.unique(p[p > 0]))))
                    for t, p in zip(truths, predictions, strict=True)]
print("true / predicted nuclei per image:", per_image_counts)
error_gallery([s.image for s in samples], truths, predictions, max_examples=12)


# %% [markdown]
# Which kind of error dominates depends on the trained weights and the images: read the counts
# above rather than a rule of thumb. If they are all zero, the network found every nucleus of
# these six images at IoU 0.5; call `error_examples` and `error_gallery` with `tau=0.75` to see
# where its outlines are furthest off. Two failure modes are typical of a network trained for a
# few minutes on small crops. A **merge** appears where the predicted boundary between touching
# nuclei has a gap, so one seed grows over both. A **split** appears where $p_\mathrm{int}$ has a
# dip or a hole inside one nucleus: the distance map then has two maxima, two seeds, and the
# watershed cuts the nucleus in two (the per-image counts above show it as more predicted than
# true nuclei in an image). The boundary class, its band widened where nuclei touch (notebook 00)
# and losses that weigh it up (Dice, focal) target the first; longer training on larger crops
# (the GPU recipe) reduces both.
#
# ### Bonus (optional): half a nucleus
# Two metrics can disagree on the same prediction. Write `student_half_nucleus(labels, label)`:
# a prediction (an integer array of the image's shape) with a single object, the first
# $\lfloor n / 2 \rfloor$ of the $n$ pixels of nucleus `label` (any half will do) and nothing
# else. The cell after the check scores it with AP@0.5 and SEG.

# %% tags=["exercise"]
def student_half_nucleus(labels, label):
    """One predicted object covering n // 2 of the n pixels of nucleus `label`."""
    raise NotImplementedError("Student exercise: predict half of one nucleus")


# %% tags=["check"]
check_half_nucleus(student_half_nucleus)
# hint("half_nucleus")

# %%
half_nucleus = use_student_or_reference(student_half_nucleus, reference_half_nucleus)
ids, sizes = np.unique(sample.labels[sample.labels > 0], return_counts=True)
label = int(ids[np.argmax(sizes % 2 == 0)]) if np.any(sizes % 2 == 0) else int(ids[0])
n = int((sample.labels == label).sum())
only = np.where(sample.labels == label, sample.labels, 0)  # this nucleus alone
half = half_nucleus(only, label)
m = evaluate_instances(only, half)
print(f"IoU of the half with its nucleus: {(n // 2) / n:.3f}")
print("AP@0.5 counts it as found (IoU >= 0.5):", m["ap50"] == 1.0, "| even size:", n % 2 == 0)
print("SEG gives it 0 (needs more than half covered):", m["seg"] == 0.0)
#
# ## 6. GRUU-Net vs U-Net
#
# The course's U-Net has about the same number of parameters as the tiny GRUU-Net and is trained
# with the same recipe (`course_model(arch="unet")`, trained once and cached as well). Same test
# images, same post-processing, same metrics.

# %%
# NBVAL_IGNORE_OUTPUT
unet = course_model(arch="unet")

# %%
n_gru, n_unet = count_parameters(model), count_parameters(unet)
print("parameters within 10% of each other:", abs(n_gru - n_unet) <= 0.1 * n_gru)
results = {"GRUU-Net": scores}
results["U-Net"] = evaluate_dataset(truths, predict_samples(unet, samples))

# %%
# NBVAL_IGNORE_OUTPUT
print(f"{'':>9} {'Dice':>6} {'F1@0.5':>7} {'AP@0.5':>7} {'mean AP':>8} {'SEG':>6}")
for name, s in results.items():
    print(f"{name:>9} {s['dice']:6.3f} {s['f1_50']:7.3f} {s['ap50']:7.3f} {s['mean_ap']:8.3f} "
          f"{s['seg']:6.3f}")

# %%
for name, s in results.items():
    print(f"{name}: Dice >= 0.8: {s['dice'] >= 0.8}, AP@0.5 >= 0.4: {s['ap50'] >= 0.4}")
gap = results["GRUU-Net"]["ap50"] - results["U-Net"]["ap50"]
print("GRUU-Net's AP@0.5 at least as good as the U-Net's, within 0.15:", gap >= -0.15)

# %% [markdown]
# The printed thresholds say how far each network got in a minute of CPU training on the sample
# data, which mixes dim and saturated nuclei, debris and uneven illumination. Six small test
# images are few, and another training seed moves either network's scores:
# `benchmarks/bench_train.py --seeds 0 1 2` trains both several times, with the same compute,
# and scores them on 16 larger images of each test set; at its budget the two networks end up
# within a few hundredths of each other on the means over three seeds, and which one is ahead
# has changed from run to run (the README quotes the latest run and what the ones before gave).
# The claim that GRUU-Net does better comes from the paper's experiments on real microscopy data
# after full training, which this course does not reproduce; rerun this comparison on a GPU
# (`GRUUNET_PRESET=paper`) or on your own data to test it. Always compare on the same images
# with the same post-processing, and look at the error gallery of both before trusting a single
# number.

# %% [markdown]
# ### Think about it
# 1. Why can pixel Dice be high while AP@0.5 is low?
# 2. A dip of $p_\mathrm{int}$ inside one nucleus gives two seeds and splits it (section 5).
#    How would you change the seeding to prevent that, and what would the change cost where two
#    touching nuclei really are joined by a thin neck?
# 3. A test set has one image with 40 crowded nuclei and nine images with 2 easy nuclei each.
#    The network gets the easy ones right and half of the crowded ones. Which is higher, the
#    pooled AP or the mean of the per-image APs, and which would you report?
# 4. Look at the per-image counts of section 5. An image with only a few dim nuclei is
#    normalised between its own 1st and 99.8th percentiles: what happens to its background
#    noise? The course's training renormalises three crops in ten on their own percentile range
#    (`AugmentConfig.own_range_p`); why?

# %% [markdown]
# ## Summary
# - Seeds inside the predicted interior + a watershed turn the 3-class output into instances.
# - Objects are matched one-to-one at $\mathrm{IoU} \ge \tau$; TP, FP and FN give precision,
#   recall, F1 and AP; their mean over $\tau$ rewards precise outlines.
# - An error gallery tells misses, spurious objects, merges and splits apart.
#
# **Next:** notebook 06 looks inside the network: what each FRDU step adds to the state.
