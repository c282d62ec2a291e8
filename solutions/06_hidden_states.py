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
# # 06 · Inside GRUU-Net: the hidden state, step by step
#
# **What you will learn**
# - to capture the full-resolution state $h_t$ and the gates $z_t$, $r_t$ of every FRDU step of a
#   trained GRUU-Net;
# - to *read out* each state through the network's head: what would the network predict if it
#   stopped after step $t$? (exercise 1);
# - to summarise the gates per step (exercise 2): where does the network update its state?
# - to explore states interactively: a slider over the steps, one channel of $h_t$ or its first
#   three principal components as RGB, both gates, the read-out and an overlay on the image,
#   on this notebook's image and on the test images notebook 05 got most wrong.
#
# Steps are numbered as in notebook 03: $h_0$ is the stem's output, and FRDU step
# $t = 1, \dots, T$ with $T = 2S - 1$ computes $h_t$ ($S$ scales; the tiny preset has $S = 3$,
# so $T = 5$). In Python, `states[t - 1]` holds step $t$.
#
# **Time:** about 30 minutes. **Prerequisites:** notebooks 02-05.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from gruunet_edu.data import SyntheticNucleiDataset, percentile_normalize
from gruunet_edu.evaluation.evaluate import predict_samples
from gruunet_edu.evaluation.metrics import dice_score, seg_measure
from gruunet_edu.exercises import hint, use_student_or_reference
from gruunet_edu.exercises.bonus import check_state_change
from gruunet_edu.exercises.nb6_hidden_states import (
    check_gate_means,
    check_readout_per_step,
    reference_gate_means,
    reference_readout_per_step,
)
from gruunet_edu.training.pretrained import course_model
from gruunet_edu.viz import HiddenStateExplorer, explorer_widget
from gruunet_edu.viz.plots import error_examples

_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. One state, refined by every FRDU
#
# GRUU-Net keeps a single full-resolution state $h$ with $C_h$ channels. FRDU $t$ looks at the
# image at its own scale (the pooling stream $o_t$), projects what it found to $C_h$ channels,
# upsamples it to $x_t$ and lets a ConvGRU decide, per pixel and channel, how much to change:
#
# $$
# \begin{aligned}
# z_t &= \sigma(W_z * x_t + U_z * h_{t-1} + b_z), \qquad
# r_t = \sigma(W_r * x_t + U_r * h_{t-1} + b_r), \\
# \tilde h_t &= \mathrm{LReLU}\big(W_h * x_t + U_h * (r_t \odot h_{t-1}) + b_h\big), \qquad
# h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t .
# \end{aligned}
# $$
#
# Encoder steps work at coarser and coarser scales (pooling factors 2, 4, 8 in the tiny
# preset), decoder steps come back up. Every $h_t$ has the shape of the final state, so the
# network's head (a residual block and a convolution, `model.readout`) can read any of them:
#
# $$
# \hat y^{(t)} = \mathrm{softmax}\big(\mathrm{head}(h_t)\big).
# $$
#
# The head was trained only on the last state, so early read-outs are a probe, not a
# prediction the network was asked to make; how close they come is part of what we learn.

# %%
# NBVAL_IGNORE_OUTPUT
model = course_model()  # the model notebook 04 trained and cached (shared with 05)

# %%
sample = SyntheticNucleiDataset(1, size=128, seed=0, split="test", pool=1).sample(0)
image = percentile_normalize(sample.image)  # (H, W), as in training
truth = sample.labels
x = torch.from_numpy(image)[None, None]  # (1, 1, H, W)
model.eval()
with torch.no_grad():
    logits, states = model(x, return_states=True)
print("logits:", tuple(logits.shape), "| FRDU steps T =", len(states))
for t, s in enumerate(states, start=1):  # states[t - 1] holds step t
    print(f"step t = {t}: h {tuple(s.h.shape)}  z {tuple(s.z.shape)}  o {tuple(s.o.shape)}")

# %% [markdown]
# `states` is a list with one `FRDUStep` per FRDU, in the order $t = 1, \dots, T$: `h` (the new
# state $h_t$), `z` and `r` (the
# gates) and `o` (the pooling stream at that step's scale). The stem's $h_0$ is not in the list.
# The states are detached copies: asking
# for them costs memory only when `return_states=True`.
#
# ### Exercise 1: read every state through the head
# Write `student_readout_per_step(model, states)`: for each step, the class probabilities
# $\mathrm{softmax}(\mathrm{head}(h_t))$ of the image as a `(K, H, W)` array; return the list.

# %% tags=["exercise"]
def student_readout_per_step(model, states):
    """softmax(model.readout(h_t)) for every step t: a list of (K, H, W) arrays."""
    ### BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        return [torch.softmax(model.readout(s.h), dim=1)[0].numpy() for s in states]
    #> raise NotImplementedError("Student exercise: read each state through model.readout")
    ### END SOLUTION


# %% tags=["check"]
check_readout_per_step(student_readout_per_step)
# hint("readout_per_step")  # uncomment for a hint; each call shows the next one

# %% [markdown]
# ### Exercise 2: how much does each step update?
# Write `student_gate_means(states, which="z")`: the mean of the update gate $z_t$
# (`which="z"`) or of the reset gate $r_t$ (`which="r"`) over channels and pixels, one number
# per step $t = 1, \dots, T$, as an array of shape `(T,)` (the docstring below calls it `S`).

# %% tags=["exercise"]
def student_gate_means(states, which="z"):
    """Mean of z_t or r_t over channels and pixels, for every step: shape (S,)."""
    ### BEGIN SOLUTION
    return np.array([getattr(s, which).mean().item() for s in states])
    #> raise NotImplementedError("Student exercise: average the gate of every step")
    ### END SOLUTION


# %% tags=["check"]
check_gate_means(student_gate_means)
# hint("gate_means")

# %% [markdown]
# ## 2. What each step adds
#
# Read-outs and gate means of all steps (your functions if they passed, the reference
# otherwise), with the foreground Dice of each read-out against the true nuclei.

# %%
readout_per_step = use_student_or_reference(student_readout_per_step, reference_readout_per_step)
gate_means = use_student_or_reference(student_gate_means, reference_gate_means)

readouts = readout_per_step(model, states)
dice = [dice_score(probs.argmax(axis=0), truth) for probs in readouts]  # foreground Dice
z_means, r_means = gate_means(states, "z"), gate_means(states, "r")

fig, (ax_d, ax_g) = plt.subplots(1, 2, figsize=(10, 3.3))
steps = np.arange(1, len(states) + 1)  # t = 1 ... T
ax_d.plot(steps, dice, "o-")
ax_d.set_xticks(steps)
ax_d.set_xlabel("FRDU step t")
ax_d.set_ylabel("foreground Dice of the read-out")
ax_d.set_ylim(0, 1)
ax_g.plot(steps, z_means, "o-", label="update gate z_t")
ax_g.plot(steps, r_means, "s-", label="reset gate r_t")
ax_g.set_xticks(steps)
ax_g.set_xlabel("FRDU step t")
ax_g.set_ylabel("mean over channels and pixels")
ax_g.set_ylim(0, 1)
ax_g.legend()
plt.tight_layout()
plt.show()
print("read-out after the last step = the network's prediction:", np.allclose(
    readouts[-1], torch.softmax(logits, dim=1)[0].numpy(), atol=1e-5))
print("Dice of the last read-out >= 0.8:", dice[-1] >= 0.8)
print("the first read-out scores a lower Dice than the last:", dice[0] < dice[-1])

# %% [markdown]
# The same story as pictures: per step $t$ the state's first three principal components as RGB
# (one PCA basis fitted on all steps, so a colour means the same direction at every step), the
# gates (mean over channels, with a colour bar: dark = 0, bright = 1) and the read-out on the
# image (interior green, boundary magenta, true outline yellow). `HiddenStateExplorer` computes
# these arrays (its `step` is $t$, from 1 to $T$); `plot_steps` draws them as a static figure.

# %%
explorer = HiddenStateExplorer(model, image, truth=truth)
print("explorer: steps t =", list(explorer.steps), "|", explorer.num_channels, "channels,",
      explorer.shape)
fig = explorer.plot_steps(rows=("pca", "z", "r", "overlay"), size=1.9)
plt.show()

# %% [markdown]
# Questions to answer with the figure (and the explorer below):
# - At which steps is the update gate open mostly on the nuclei, and at which mostly on the
#   background? A step with $z_t \approx 0$ somewhere leaves the state unchanged there.
# - Does the read-out change much after the first step? Where does it change: inside nuclei,
#   at their outlines, or between touching nuclei?
# - The PCA colours use one basis for all steps: which steps move the state the most?
#
# The answers depend on the trained weights: read them off the figure and the printed Dice
# and gate means rather than expecting a fixed pattern. A small network trained for a few
# minutes often finds the nuclei at an early step and uses later steps to refine the
# background and the outlines, but other runs divide the work differently.
#
# ### Bonus (optional): how far does each step move the state?
# Write `student_state_change(states)`: for $t = 2, \dots, T$ the mean of $|h_t - h_{t-1}|$
# over channels and pixels, an array of shape `(T - 1,)` (the stem's $h_0$ is not captured, so
# step 1 has no predecessor here).

# %% tags=["exercise"]
def student_state_change(states):
    """mean |h_t - h_{t-1}| for t = 2 ... T: shape (T - 1,)."""
    ### BEGIN SOLUTION
    return np.array(
        [(b.h - a.h).abs().mean().item() for a, b in zip(states[:-1], states[1:], strict=True)]
    )
    #> raise NotImplementedError("Student exercise: the change of the state at every step")
    ### END SOLUTION


# %% tags=["check"]
check_state_change(student_state_change)
# hint("state_change")

# %% [markdown]
# ## 3. The interactive explorer
#
# Move the **step** slider to walk through the FRDUs, $t = 1, \dots, T$. **view** switches the
# state panel between one **channel** of $h_t$ (blue negative, red positive, one scale per
# channel for all steps, shown by the colour bar) and **PCA** (three principal components as
# RGB; the caption gives the share of the variance of each component, PC1 first); in channel
# view the gates show that channel too, otherwise their mean over channels. The **channel**
# slider is greyed out in PCA view, where it has no effect. Below: the read-out
# $\hat y^{(t)}$ and its overlay on the image, with a legend of the colours, and the Dice of the
# read-out in the caption line.
#
# The **image** picker offers, besides this notebook's image, the three test images of
# notebook 05 that the network segments worst (lowest SEG; same model, same test set), each
# named with its errors at IoU 0.5: look at how the state and the read-out evolve where the
# network does least well. Each image's explorer is computed when you first pick it.

# %%
# NBVAL_IGNORE_OUTPUT
test_set = SyntheticNucleiDataset(6, size=128, seed=0, split="test", pool=6)  # as in 05
test_samples = [test_set.sample(i) for i in range(len(test_set))]
test_predictions = predict_samples(model, test_samples)
test_truths = [s.labels for s in test_samples]
test_errors = error_examples([s.image for s in test_samples], test_truths, test_predictions)
errors_per_image = np.bincount([e["index"] for e in test_errors], minlength=len(test_samples))
seg_per_image = [seg_measure(t, p) for t, p in zip(test_truths, test_predictions, strict=True)]
worst = [int(i) for i in np.argsort(seg_per_image, kind="stable")[:3]]  # lowest SEG first
print("errors at IoU 0.5 per test image of notebook 05:", errors_per_image.tolist())
print("SEG per test image:", [round(float(v), 2) for v in seg_per_image])


def explorer_of(i):
    """The explorer of test image i, built when the picker first shows it."""
    sample_i = test_samples[i]
    return HiddenStateExplorer(model, percentile_normalize(sample_i.image), truth=sample_i.labels)


def describe(i):
    kinds = sorted({e["name"] for e in test_errors if e["index"] == i})
    found = f"{errors_per_image[i]} errors ({', '.join(kinds)})" if kinds else "no errors"
    return f"05 test image {i}: SEG {seg_per_image[i]:.2f}, {found} at IoU 0.5"


images = {"this notebook's image": explorer}
images.update({describe(i): (lambda i=i: explorer_of(i)) for i in worst})
print("images in the picker:", len(images))

# %%
# NBVAL_IGNORE_OUTPUT
widget = explorer_widget(images)
widget

# %% [markdown]
# ### Think about it
# 1. The update gate is a sigmoid. What would $z_t \approx 0$ everywhere at one step mean, and
#    what would you see in the explorer?
# 2. The head was trained on the last state only. Why can an early read-out still look like a
#    segmentation, and why is a poor early read-out no proof that the early steps are useless?
# 3. On the worst of notebook 05's images in the picker, where does the last read-out differ
#    most from the true outlines, at which step does it go wrong there, and can the later steps
#    repair it? What does that suggest about where the fix belongs: the network or the
#    post-processing?

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Answers.**
# 1. That FRDU leaves the state unchanged (it is skipped): $h_t \approx h_{t-1}$, so the state
#    panel and the read-out do not change when the slider moves onto that step.
# 2. Every step writes into the same state that the head reads, and the GRU keeps most of it
#    from step to step ($z_t$ is often small), so the state's "meaning" changes little between
#    steps and the head can read early states too. A poor early read-out only says that the
#    head cannot read that state yet: the information may be there in a form only later steps
#    use (the head is a probe, not a decoder trained for step $t$).
# 3. It depends on the image; typically a merge is visible as a missing boundary in the
#    read-out from some step on, which later steps fail to restore, and a split as a dip in the
#    interior that appears at one step. If the read-out of the last step already has the error,
#    better training (more steps, larger crops, a loss that weighs the boundary) is the fix; if
#    the probabilities look right and only the instances are wrong, the post-processing is.

# %% [markdown]
# ## Summary
# - `model(x, return_states=True)` returns every $h_t$, $z_t$, $r_t$ (and $o_t$).
# - Reading $h_t$ through the head shows how the segmentation forms step by step; the last
#   read-out is the prediction.
# - Gate means tell how much each step changes the state; the explorer shows where.
#
# This is the end of the course. Ideas to go further: train the `small` or `paper` preset on a
# GPU and compare the explorer's pictures; try `state_downsample="bilinear"` (the blog's
# choice); look at the states on images where the network fails (notebook 05's gallery, with a
# stricter `tau` if it shows no errors).
