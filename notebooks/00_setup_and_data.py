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
# # 00 · Set-up and data
#
# **What you will learn**
# - check that your environment works (PyTorch, the course package, CPU or GPU);
# - what the course's images look like: synthetic fluorescence nuclei with instance labels;
# - why images are normalised by *percentiles* (exercise 1);
# - how instance labels become a three-class training target: background, interior, boundary
#   (exercise 2);
# - how images are stored on disk and served to PyTorch as a dataset.
#
# **Time:** about 25 minutes. **Prerequisites:** NumPy and a little PyTorch.
#
# **How the exercises work.** A cell marked *Exercise* has a gap for you to fill in. The cell
# after it runs a **check** that compares your code with the reference implementation on several
# inputs and says specifically what is wrong. `hint("name")` shows one more hint each time you
# call it. If you skip an exercise, the notebook still runs: later cells use the reference
# implementation and say so.

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from gruunet_edu.data import (
    CONTACT_RADIUS,
    SyntheticNucleiDataset,
    make_nuclei,
    percentile_normalize,
    read_dataset,
    sample_kinds,
    three_class,
    write_sample_dataset,
)
from gruunet_edu.exercises import hint, use_student_or_reference
from gruunet_edu.exercises.bonus import check_touching_pairs, reference_touching_pairs
from gruunet_edu.exercises.nb0_data import check_normalize, check_three_class
from gruunet_edu.training.device import choose_device, default_preset, device_notice
from gruunet_edu.viz.plots import show_sample

torch.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Your environment
#
# The course runs on a laptop CPU. Where a GPU is present, training notebooks use it and a larger
# preset automatically; set the environment variable `GRUUNET_DEVICE=cpu` (or `cuda`, `mps`) to
# choose yourself, and `GRUUNET_PRESET` to choose the model size.

# %%
# NBVAL_IGNORE_OUTPUT
device = choose_device()
print(f"PyTorch {torch.__version__}, NumPy {np.__version__}")
print(device_notice(device, default_preset(device)))

# %% [markdown]
# ## 2. The images
#
# Real nucleus images need a download and a licence check; the course instead *simulates*
# widefield fluorescence images: irregular ellipses, some touching in clusters, a few very bright
# (dividing) nuclei, some out of focus, an uneven background, blur and Poisson–Gaussian noise.
# Every image comes with its **instance labels**: 0 is background, 1..N number the nuclei.
# The same seed always gives the same image.

# %%
image, labels = make_nuclei(seed=11, size=128)
print("image :", image.shape, image.dtype)
print("labels:", labels.shape, labels.dtype, "| nuclei:", int(labels.max()))

# %%
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
axes[0].imshow(image, cmap="gray")
axes[0].set_title("image")
axes[1].imshow(np.ma.masked_equal(labels, 0), cmap="tab20", interpolation="nearest")
axes[1].set_title("instance labels")
for ax in axes:
    ax.axis("off")
plt.show()

# %% [markdown]
# Real fluorescence images are harder than this one, and the sample data covers what they
# have: within one image, dim nuclei at a tenth of the brightest next to a few saturated
# (dividing) ones; nucleus sizes that change from image to image (as with another objective);
# dense clusters where touching nuclei are separated only by a thin, slightly darker seam
# (in the training data about three in four touching nuclei are drawn as bright as the one
# they touch, so that only the seam tells the two apart);
# uneven illumination; out-of-focus nuclei and unlabelled debris; 8- and 16-bit camera counts.
# `sample_kinds` draws one image of each kind (shown percentile-normalised; "dimmest" and
# "brightest" are nucleus medians above the background after normalisation).

# %%
kinds = sample_kinds(seed=0, size=160)
fig, axes = plt.subplots(2, len(kinds), figsize=(2.4 * len(kinds), 5))
for (name, (kind_image, kind_labels)), top, bottom in zip(kinds.items(), *axes, strict=True):
    shown = percentile_normalize(kind_image)
    background = np.median(shown[kind_labels == 0])
    levels = [
        np.median(shown[kind_labels == i]) - background for i in range(1, kind_labels.max() + 1)
    ]
    print(
        f"{name:<24} {str(kind_image.dtype):<8} {int(kind_labels.max()):>3} nuclei, "
        f"dimmest {min(levels):.2f}, brightest {max(levels):.2f}"
    )
    top.imshow(np.clip(shown, 0, 1), cmap="gray")
    top.set_title(name, fontsize=9)
    bottom.imshow(np.ma.masked_equal(kind_labels, 0), cmap="tab20", interpolation="nearest")
for ax in axes.ravel():
    ax.axis("off")
plt.show()


# %% [markdown]
# ## 3. Percentile normalisation
#
# Microscopes produce 8-, 12- or 16-bit images whose range depends on the exposure. Networks
# train best on inputs around $[0, 1]$, so every image is mapped by
#
# $$ x' = \frac{x - p_{1}}{p_{99.8} - p_{1} + \varepsilon}, $$
#
# where $p_{1}$ and $p_{99.8}$ are the 1st and 99.8th percentiles of the image's pixels.
# Why not the minimum and maximum? A handful of hot pixels (cosmic rays, a saturated spot) would
# become the maximum and squash all nuclei into a narrow band near 0. Percentiles ignore them.
# Values outside $[0, 1]$ are kept (no clipping), and $\varepsilon = 10^{-6}$ keeps a constant
# image from dividing by zero.
#
# ### Exercise 1: write `normalize(image)`
# Return a `float32` array of the image's shape. `np.percentile(image, [1, 99.8])` gives both
# percentiles.

# %% tags=["exercise"]
def normalize(image, low=1.0, high=99.8, eps=1e-6):
    """Map the low-th percentile of `image` to 0 and the high-th to 1 (float32, same shape)."""
    raise NotImplementedError("Student exercise: map the two percentiles to 0 and 1")


# %% tags=["check"]
check_normalize(normalize)
# hint("normalize")  # uncomment for a hint; each call shows the next one

# %% [markdown]
# The effect of a few hot pixels: with min–max scaling the nuclei end up near 0; with
# percentiles they keep their range.

# %%
norm = use_student_or_reference(normalize, percentile_normalize)
hot = image.copy()
hot[rng.integers(0, 128, 4), rng.integers(0, 128, 4)] = 40.0  # four hot pixels
minmax = (hot - hot.min()) / (hot.max() - hot.min())
nuclei = labels > 0
print(f"median nucleus value, min-max scaling: {np.median(minmax[nuclei]):.2f}")
print(f"median nucleus value, percentiles:     {np.median(norm(hot)[nuclei]):.2f}")


# %% [markdown]
# ## 4. From instance labels to a training target
#
# A network that only predicts *foreground* merges touching nuclei into one blob. GRUU-Net, like
# many nucleus segmenters, predicts three classes per pixel:
#
# | class | meaning |
# |---|---|
# | 0 | background |
# | 1 | interior of a nucleus |
# | 2 | boundary: a nucleus pixel with a 4-neighbour of **another label** |
#
# Because the boundary runs on *both* sides of the line where two nuclei touch, the interiors of
# two nuclei never touch, and labelling the connected interior regions of a prediction gives one
# object per nucleus. The image border is not a boundary.
#
# ### Exercise 2: write `student_three_class(labels)`
# Input: integer labels (H, W). Output: `uint8` (H, W) with values 0, 1, 2.

# %% tags=["exercise"]
def student_three_class(labels):
    """0 background, 1 interior, 2 boundary (nucleus pixels with a 4-neighbour of another label)."""
    raise NotImplementedError("Student exercise: interior 1, boundary 2, background 0")


# %% tags=["check"]
check_three_class(student_three_class)
# hint("three_class")

# %%
make_three_class = use_student_or_reference(student_three_class, three_class)
target = make_three_class(labels)
counts = np.bincount(target.ravel(), minlength=3)
print("pixels per class (background, interior, boundary):", counts.tolist())
print(f"boundary pixels per nucleus pixel: {counts[2] / (counts[1] + counts[2]):.2f}")
show_sample(image, labels, target)

# %% [markdown]
# The boundary class matters where nuclei **touch**. The example image may have few touching
# nuclei or none, so the next cell counts the touching pairs (two nuclei with 4-neighbouring
# pixels) in it and, to see the boundary at work, takes the first sample image that has some
# and zooms in on one pair: the boundary (magenta) runs on both sides of the contact line, and
# the two interiors (green) stay apart.

# %%
pairs = reference_touching_pairs(labels)
print("touching pairs in the example image:", len(pairs))
for seed in range(4, 100):  # the first image with touching nuclei
    image_t, labels_t = make_nuclei(seed=seed, size=128)
    pairs_t = sorted(reference_touching_pairs(labels_t))
    if pairs_t:
        break
a, b = pairs_t[0]
ys, xs = np.nonzero(np.isin(labels_t, (a, b)))
y0, y1 = max(ys.min() - 6, 0), ys.max() + 7
x0, x1 = max(xs.min() - 6, 0), xs.max() + 7
crop = (slice(y0, y1), slice(x0, x1))
target_t = make_three_class(labels_t)
interior = labels_t * (target_t == 1)  # interior pixels keep their nucleus's label
print(f"seed {seed}: {len(pairs_t)} touching pairs; nuclei {a} and {b} touch")
print("their interiors touch:", (a, b) in reference_touching_pairs(interior))
show_sample(image_t[crop], labels_t[crop], target_t[crop], title=f"touching nuclei {a} and {b}")

# %% [markdown]
# ### The target the course trains on: a wider seam where nuclei touch
# Two pixels of boundary are all a network has to draw between two pressed nuclei, and a small
# network often misses part of them; the two interiors then join and the pair comes out as one
# object. The course's datasets (`NucleiDataset`, `SyntheticNucleiDataset`, section 5) therefore
# widen the boundary where nuclei touch: `three_class(labels, contact_radius=CONTACT_RADIUS)`
# also calls every nucleus pixel within `CONTACT_RADIUS` (3) px of *another* nucleus boundary.
# The outline towards the background stays one pixel wide, and notebook 05's post-processing
# grows every interior back over its whole nucleus. A small nucleus squeezed between others,
# which the band would leave without an interior, keeps the one-pixel rim. Your
# `student_three_class` is the textbook target with `contact_radius=0`.

# %%
wide_t = three_class(labels_t, contact_radius=CONTACT_RADIUS)
pair = np.isin(labels_t, (a, b))
print("boundary pixels of the pair, one-pixel target:   ", int((pair & (target_t == 2)).sum()))
print("boundary pixels of the pair, widened at the contact:", int((pair & (wide_t == 2)).sum()))
print("their interiors touch:", (a, b) in reference_touching_pairs(labels_t * (wide_t == 1)))
show_sample(image_t[crop], labels_t[crop], wide_t[crop], title=f"widened by {CONTACT_RADIUS} px")


# %% [markdown]
# ### Bonus (optional): which nuclei touch?
# Write `student_touching_pairs(labels)`: the set of pairs `(a, b)`, `a < b`, of nuclei that
# have 4-neighbouring pixels (above, below, left or right; corners meeting diagonally do not
# count). The cell above used the reference; the check tries your function on small label
# images, including labels that are not consecutive.

# %% tags=["exercise"]
def student_touching_pairs(labels):
    """{(a, b), ...} with a < b for every two nuclei with 4-neighbouring pixels."""
    raise NotImplementedError("Student exercise: find the pairs of touching nuclei")


# %% tags=["check"]
check_touching_pairs(student_touching_pairs)
# hint("touching_pairs")

# %% [markdown]
# ### Think about it
# 1. What fraction of the nucleus pixels are boundary pixels, and why does it matter for the
#    loss?
# 2. After training, nuclei are found by labelling the connected regions of the predicted
#    interior. If you label with 8-connectivity (diagonal neighbours count), can the interiors
#    of two touching nuclei still merge into one region?
# 3. An image with a single small nucleus and a large empty background: where do $p_1$ and
#    $p_{99.8}$ fall, and what does normalisation do to the nucleus's values?

# %% [markdown]
# ## 5. Data on disk and as a PyTorch dataset
#
# The command-line tool and the training notebooks read image/mask pairs from folders:
# `train/images/000.tif` with `train/masks/000.tif`, and the same for `val/` and `test/`.
# `write_sample_dataset` writes such a folder with synthetic images; `read_dataset` reads it
# (also the Cell Tracking Challenge and Data Science Bowl layouts).

# %%
with tempfile.TemporaryDirectory() as tmp:
    paths = write_sample_dataset(tmp, n_train=4, n_val=2, n_test=0, size=64, seed=0)
    for split in ("train", "val"):
        files = sorted(p.relative_to(tmp).as_posix() for p in Path(paths[split]).rglob("*.tif"))
        print(f"{split}: {len(files)} files, e.g. {files[0]}")
    samples = read_dataset(paths["train"])
    print("read", len(samples), "samples; first:", samples[0].image.shape, samples[0].labels.dtype)

# %% [markdown]
# For training, `SyntheticNucleiDataset` generates images on the fly (deterministically) and
# returns what the network needs: a normalised image tensor (C, H, W) and the three-class target
# (H, W) as class indices, its boundary widened where nuclei touch (`contact_radius`, above).

# %%
dataset = SyntheticNucleiDataset(n=8, size=64, seed=0)
x, y = dataset[0]
print("items:", len(dataset))
print("image :", tuple(x.shape), x.dtype)
print("target:", tuple(y.shape), y.dtype, "classes", sorted(torch.unique(y).tolist()))

# %% [markdown]
# ## Summary
# - Images are normalised by percentiles, robust to a few extreme pixels.
# - Instance labels become a three-class target whose boundary class separates touching nuclei;
#   for training, the boundary is widened to a few pixels where nuclei touch.
# - Datasets return `(image (C, H, W) float32, target (H, W) int64)`.
#
# **Next:** notebook 01 builds the recurrent unit at the heart of GRUU-Net, the convolutional GRU.
