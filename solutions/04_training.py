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
# # 04 · Training GRUU-Net
#
# **What you will learn**
# - the losses for a 3-class segmentation (background, interior, boundary): cross-entropy, the
#   soft Dice loss and the focal loss, and why the thin boundary class needs more than
#   cross-entropy;
# - to implement the soft Dice loss (exercise 1) and the focal loss (exercise 2) and check them
#   against the reference;
# - the training loop of `gruunet_edu.training`: device choice (GPU when there is one, the
#   `tiny` preset on a CPU), progress bars, loss curves;
# - to save a checkpoint and load it back.
#
# **Time:** about 45 minutes (training itself takes a few minutes on a laptop CPU).
# **Prerequisites:** notebooks 00 and 03 (the 3-class target, `GRUUNet`).

# %%
# %matplotlib inline
import inspect

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gruunet_edu.data import SyntheticNucleiDataset
from gruunet_edu.exercises import hint, use_student_or_reference
from gruunet_edu.exercises.bonus import check_class_weights
from gruunet_edu.exercises.nb4_training import check_focal_loss, check_soft_dice
from gruunet_edu.models import GRUUNetConfig, build_model, count_parameters
from gruunet_edu.training.checkpoint import load_checkpoint, load_model
from gruunet_edu.training.device import choose_device, device_notice, set_seed
from gruunet_edu.training.loop import train
from gruunet_edu.training.losses import cross_entropy_loss, focal_loss, make_loss, soft_dice_loss
from gruunet_edu.training.pretrained import course_model_path
from gruunet_edu.training.quick import synthetic_data
from gruunet_edu.training.recipes import COURSE_DATA, course_run, recipe
from gruunet_edu.viz.plots import plot_history, show_classes, show_sample

_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. What the network is trained to predict
#
# For every pixel the network outputs $K = 3$ **logits**; the softmax over the class axis turns
# them into probabilities $p_{ic}$ (pixel $i$, class $c$): background, nucleus interior, nucleus
# boundary. The target $y_i$ comes from the instance labels (notebook 00). Boundary pixels are
# few, but they are what separates touching nuclei, so the loss must not let the network ignore
# them.
#
# Tensors in this notebook: logits `(B, K, H, W)` (class axis **1**), target `(B, H, W)` integers.

# %%
examples = SyntheticNucleiDataset(1, size=128, seed=1, pool=1)
image, target = examples[0]
print("one item:", tuple(image.shape), image.dtype, "|", tuple(target.shape), target.dtype)
fractions = torch.bincount(target.flatten(), minlength=3).float() / target.numel()
for name, f in zip(("background", "interior", "boundary"), fractions, strict=True):
    print(f"{name:>10}: {f:.0%} of the pixels")
show_sample(image[0], examples.sample(0).labels, target)

# %% [markdown]
# ## 2. Three losses
#
# **Cross-entropy** averages $-\log p_{i, y_i}$ over the pixels. Every pixel counts the same, so
# the many easy background pixels dominate.
#
# **Soft Dice loss.** The Dice coefficient $2|P \cap G| / (|P| + |G|)$ measures overlap; its
# *soft* version uses probabilities instead of hard masks, which keeps it differentiable. With
# the one-hot target $g_{ic}$ and sums over all pixels of the batch, one Dice per class:
#
# $$
# \mathrm{Dice}_c = \frac{2 \sum_i p_{ic}\, g_{ic} + s}{\sum_i p_{ic} + \sum_i g_{ic} + s},
# \qquad L_\mathrm{Dice} = 1 - \frac{1}{K} \sum_{c} \mathrm{Dice}_c .
# $$
#
# Every class counts the same however few pixels it has. The smoothing $s$ (here 1) keeps the
# ratio defined when a class is absent from a batch.
#
# **Focal loss** (Lin et al., 2017) multiplies the cross-entropy of each pixel by
# $(1 - p_t)^\gamma$, with $p_t = p_{i, y_i}$ the probability of the true class:
#
# $$
# \mathrm{FL} = -\frac{1}{N} \sum_i (1 - p_{t,i})^{\gamma} \log p_{t,i}.
# $$
#
# A pixel that is already right ($p_t \to 1$) contributes almost nothing, so training focuses
# on the hard pixels, such as boundaries between touching nuclei. $\gamma = 0$ gives back the
# cross-entropy. GRUU-Net's paper (Wollmann et al., 2019, doi:10.1016/j.media.2019.04.011) is
# reported to use a focal-type loss for this reason; its exact form is not given in the blog post
# (which does not describe the training), so this course uses the standard form above, from Lin
# et al. (2017), not a reproduction of the paper's.

# %%
p = np.linspace(0.01, 1.0, 200)
fig, ax = plt.subplots(figsize=(5, 3.5))
for gamma in (0, 0.5, 2, 5):
    ax.plot(p, -((1 - p) ** gamma) * np.log(p), label=f"gamma = {gamma}")
ax.set_xlabel("probability of the true class p_t")
ax.set_ylabel("loss of one pixel")
ax.set_ylim(0, 4)
ax.legend()
ax.set_title("focal loss: easy pixels (p_t near 1) count less")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### Exercise 1: the soft Dice loss
# Write `student_soft_dice_loss(logits, target, smooth=1.0)` following the equation: softmax over
# the class axis, one-hot target with the same layout, sums over batch and pixels (dims 0, 2, 3),
# then `1 - mean` over the classes. Return a 0-d tensor that can be backpropagated.
# (`F.one_hot(target, K)` gives `(B, H, W, K)`; `.permute(0, 3, 1, 2)` moves the classes to dim 1.)

# %% tags=["exercise"]
def student_soft_dice_loss(logits, target, smooth=1.0):
    """Soft Dice loss of logits (B, K, H, W) against an integer target (B, H, W)."""
    ### BEGIN SOLUTION
    num_classes = logits.shape[1]
    probs = torch.softmax(logits, dim=1)  # (B, K, H, W)
    onehot = F.one_hot(target, num_classes).permute(0, 3, 1, 2).float()  # (B, K, H, W)
    dims = (0, 2, 3)
    intersection = (probs * onehot).sum(dims)  # (K,)
    dice = (2 * intersection + smooth) / (probs.sum(dims) + onehot.sum(dims) + smooth)
    return 1 - dice.mean()
    #> raise NotImplementedError("Student exercise: write the soft Dice loss")
    ### END SOLUTION


# %% tags=["check"]
check_soft_dice(student_soft_dice_loss)
# hint("soft_dice")  # uncomment for a hint; each call shows the next one

# %% [markdown]
# ### Exercise 2: the focal loss
# Write `student_focal_loss(logits, target, gamma=2.0)`. Use `torch.log_softmax` (stable) and
# `gather` to pick the log-probability of the true class at every pixel; the mean over all
# pixels of all images is the loss.

# %% tags=["exercise"]
def student_focal_loss(logits, target, gamma=2.0):
    """Focal loss of logits (B, K, H, W) against an integer target (B, H, W)."""
    ### BEGIN SOLUTION
    log_p = torch.log_softmax(logits, dim=1)  # (B, K, H, W)
    log_pt = log_p.gather(1, target.unsqueeze(1)).squeeze(1)  # (B, H, W)
    pt = log_pt.exp()
    return (-((1 - pt) ** gamma) * log_pt).mean()
    #> raise NotImplementedError("Student exercise: write the focal loss")
    ### END SOLUTION


# %% tags=["check"]
check_focal_loss(student_focal_loss)
# hint("focal_loss")

# %% [markdown]
# ### Bonus (optional): inverse-frequency class weights
# Another remedy for a rare class is to weight the cross-entropy per class. Write
# `student_class_weights(targets, num_classes=3)`: $w_k = N / (K\,n_k)$ for the $N$ pixels of
# `targets`, of which $n_k$ belong to class $k$ (0 for a class with no pixel). Then every class
# present carries the same total weight $N / K$. (`F.cross_entropy(logits, y, weight=w)` would
# use them; the training below does not.)

# %% tags=["exercise"]
def student_class_weights(targets, num_classes=3):
    """w_k = N / (K * n_k) per class (0 where n_k = 0), shape (num_classes,)."""
    ### BEGIN SOLUTION
    counts = np.bincount(np.asarray(targets).ravel(), minlength=num_classes)[:num_classes]
    weights = np.zeros(num_classes)
    present = counts > 0
    weights[present] = np.asarray(targets).size / (num_classes * counts[present])
    return weights
    #> raise NotImplementedError("Student exercise: inverse-frequency class weights")
    ### END SOLUTION


# %% tags=["check"]
check_class_weights(student_class_weights)
# hint("class_weights")

# %% [markdown]
# From here on the notebook uses your functions if they passed, the reference otherwise.
# A quick sanity check on the training item from above: a confident correct prediction, a
# confident wrong one, and "no idea" (all logits zero).

# %%
dice_loss = use_student_or_reference(student_soft_dice_loss, soft_dice_loss)
focal = use_student_or_reference(student_focal_loss, focal_loss)

t = target[None]  # (1, H, W)
right = 10.0 * F.one_hot(t, 3).permute(0, 3, 1, 2).float()  # (1, 3, H, W)
wrong = right.roll(1, dims=1)  # every pixel confidently in the wrong class
unsure = torch.zeros_like(right)
print(f"{'':>8} {'CE':>6} {'Dice':>6} {'focal':>6}")
for name, logits in (("right", right), ("wrong", wrong), ("unsure", unsure)):
    ce = cross_entropy_loss(logits, t).item()
    print(f"{name:>8} {ce:6.2f} {dice_loss(logits, t).item():6.2f} {focal(logits, t).item():6.2f}")

# %% [markdown]
# The network below trains on **cross-entropy + soft Dice** (your Dice if it passed): the
# cross-entropy gives well-scaled gradients from the start, the Dice term keeps the small
# boundary class from being ignored. (Try `focal` instead of `dice_loss` afterwards.)

# %%
class CEPlusDice(nn.Module):
    """Cross-entropy + soft Dice, the default objective of `gruunet_edu.training`."""

    def forward(self, logits, target):
        return cross_entropy_loss(logits, target) + dice_loss(logits, target)


same = torch.allclose(CEPlusDice()(unsure, t), make_loss("ce+dice")(unsure, t), atol=1e-5)
print("CE + Dice equals the package's loss 'ce+dice':", same)

# %% [markdown]
# The training below uses the package's `"ce+dice"` (the `loss` field of its settings): the same
# objective, and the same for every run of the course, so that the model trained here is the one
# notebooks 05 and 06 load.

# %% [markdown]
# ## 3. Where to train: GPU if there is one
#
# `choose_device()` takes a CUDA GPU if present (then Apple's MPS, then the CPU);
# `default_preset(device)` picks the full `paper` network on a GPU and the `tiny` one on a CPU.
# Two environment variables override both for a whole session: `GRUUNET_DEVICE=cpu` and
# `GRUUNET_PRESET=small`, for example.

# %%
# NBVAL_IGNORE_OUTPUT
device = choose_device()
preset, settings = course_run(device)
print(device_notice(device, preset))

# %% [markdown]
# On a GPU the preset's full recipe runs (thousands of steps on 256 × 256 crops). On a CPU the
# notebook trains the course's short run, `COURSE_TRAINING` in `gruunet_edu.training.recipes`:
# 300 steps, 96 × 96 crops, 4 images per step. Every `eval_interval` steps the loop validates,
# records a row of the history and writes a checkpoint. The checkpoint goes into the course's
# model cache (`$GRUUNET_CACHE`, default `~/.cache/gruunet-edu`): notebooks 05 and 06 load this
# very model with `course_model()` instead of training one of their own.

# %%
checkpoint = course_model_path(device)
config = recipe(preset, device=str(device), checkpoint=str(checkpoint), seed=0, **settings)
set_seed(0)  # the initial weights course_model() would draw, too
model_config = GRUUNetConfig.preset(preset)
model = build_model(model_config)
print(f"preset {preset!r}: {count_parameters(model):,} parameters")
print(f"{config.total_steps} steps, batch {config.batch_size}, crops of {config.crop} px")
print(f"validation and checkpoint every {config.eval_interval} steps")

# %% [markdown]
# `train(model, train_data, val_data, config)` runs AdamW with a short warm-up and a cosine
# learning-rate decay, shows a `tqdm` progress bar (a widget in JupyterLab), validates every
# `eval_interval` steps and returns a `History`. Ctrl-C (or "interrupt kernel") stops it cleanly
# and keeps the last checkpoint.

# %%
# NBVAL_IGNORE_OUTPUT
train_data, val_data = synthetic_data(crop=config.crop, seed=0, **COURSE_DATA)
history = train(model, train_data, val_data, config)

# %% [markdown]
# ### This is the loop you just ran
#
# `train` is short enough to read in one screen, as nanoGPT's `train.py` is: set up (device,
# seed, model, optimiser), resume from a checkpoint if asked, then one loop over the batches:
# an optimisation step, and every `eval_interval` steps validation, a history row and a
# checkpoint. Ctrl-C ends up in the `except KeyboardInterrupt` branch.

# %%
# NBVAL_IGNORE_OUTPUT
print(inspect.getsource(train))

# %% [markdown]
# ### On several GPUs
#
# The same loop trains data-parallel when `torchrun` starts it in several processes, one per GPU
# (`DistributedDataParallel`): each process takes its share of every batch, gradients are
# averaged, BatchNorm statistics are synchronised, and only the first process writes the
# checkpoint. From a terminal, not from this notebook:
#
# ```bash
# torchrun --nproc_per_node=4 -m gruunet_edu train --preset paper --data my_data/ --out runs/paper
# ```
#
# The README's "Training on several GPUs" explains the options, and the form for several machines.

# %% [markdown]
# ## 4. Loss curves

# %%
plot_history(history)

# %%
print("evaluations recorded:", len(history))
print("validation loss went down:", history.val_loss[-1] < history.val_loss[0])
print("val Dice >= 0.85:", history.val_dice[-1] >= 0.85)

# %% [markdown]
# ## 5. Checkpoints
#
# The checkpoint is a plain dictionary (weights, model config, optimizer state, step, history),
# written to a temporary file and renamed, so an interrupted save never leaves a broken file.
# `load_model` rebuilds the network from it; it must predict exactly what the trained one does.

# %%
state = load_checkpoint(checkpoint)
print("checkpoint keys:", sorted(state))
print("step:", state["step"], "| arch:", state["arch"])

reloaded, _ = load_model(checkpoint)
x = torch.stack([val_data[i][0] for i in range(2)])  # (2, 1, 128, 128)
model.eval()
with torch.no_grad():
    same = torch.allclose(model.cpu()(x), reloaded(x), atol=1e-5)
print("reloaded model gives the same output:", same)

# %% [markdown]
# A look at one validation image: the input, the target and the predicted classes, in the
# class colours of `show_sample` above (background black, interior green, boundary magenta).

# %%
image, target = val_data[0]
with torch.no_grad():
    predicted = reloaded(image[None]).argmax(dim=1)[0]
show_classes(image[0], {"target": target, "prediction": predicted})
print("pixels classified correctly >= 85%:", (predicted == target).float().mean().item() >= 0.85)

# %% [markdown]
# ### Think about it
# 1. Why is the validation Dice computed on the foreground only, and not as the mean of the
#    three class Dice values?
# 2. With $\gamma = 2$, how much less does a pixel predicted right with $p_t = 0.9$ count in the
#    focal loss than in the cross-entropy? Can the focal loss hurt, too?
# 3. The network trains on 96 × 96 crops and is validated on 128 × 128 images. Why does that
#    work, and what could go wrong at the borders of a crop?

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Answers.**
# 1. It is the number that matters downstream (is a pixel part of a nucleus?) and it is stable
#    early in training, when the boundary class is still mostly missed; the instance metrics of
#    notebook 05 then judge whether boundaries separate touching nuclei.
# 2. By the factor $(1 - p_t)^\gamma = 0.1^2 = 0.01$: a hundred times less. It can hurt when
#    the labels are noisy: pixels labelled wrongly stay "hard" forever and get the most weight,
#    and with large $\gamma$ the gradients of the many easy pixels almost vanish, which can slow
#    the start of training (one reason to combine it with cross-entropy or Dice).
# 3. The network is fully convolutional, so it runs on any size that is a multiple of $2^S$ (or
#    is padded to one). Near a crop's border the convolutions see padding instead of image, so
#    nuclei cut by the border look different from whole ones; larger images at validation have
#    relatively fewer such pixels, and a network trained on small crops has seen little context
#    beyond 96 pixels.

# %% [markdown]
# ## Summary
# - Cross-entropy weighs every pixel alike; the soft Dice loss weighs every *class* alike; the
#   focal loss down-weights pixels that are already right.
# - `train` picks the device, shows progress, validates, writes atomic checkpoints and returns a
#   `History`; on a CPU the `tiny` preset trains in a few minutes.
# - `load_model` restores a network from its checkpoint.
#
# **Next:** notebook 05 turns the 3-class output into instances and measures them.
