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
# # 01 · The convolutional GRU
#
# **What you will learn**
# - the four equations of a gated recurrent unit (GRU), and what the update gate $z$ and the
#   reset gate $r$ do;
# - how a GRU becomes *convolutional*: every matrix product turns into a 3×3 convolution, so the
#   state is an image with channels;
# - that the blog post this course starts from (郑之杰, "GRUU-Net: Integrated convolutional and
#   gated recurrent neural network for cell segmentation", 2021-01-25, 0809zheng.github.io) writes
#   the update with $z$ and $1 - z$ the other way round than its own code (exercise 1);
# - to implement the ConvGRU cell GRUU-Net uses (exercise 2) and check it against the reference;
# - to watch the gates and the state on a short time-lapse of moving nuclei.
#
# **Time:** about 40 minutes. **Prerequisites:** notebook 00, `torch.nn.Conv2d`.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from gruunet_edu.data import make_nuclei_sequence, percentile_normalize
from gruunet_edu.exercises import hint, use_student_or_reference
from gruunet_edu.exercises.bonus import check_gru_1x1
from gruunet_edu.exercises.nb1_convgru import check_convgru, check_update
from gruunet_edu.models import (
    ConvGRUCell,
    FusedConvGRUCell,
    copy_convgru_weights,
    count_parameters,
)

_ = torch.manual_seed(0)

# %% [markdown]
# ## Sources, and where they differ
#
# The course builds GRUU-Net from two sources:
# - **the paper**: T. Wollmann, M. Gunkel, I. Chung, H. Erfle, K. Rippe, K. Rohr, "GRUU-Net:
#   Integrated convolutional and gated recurrent neural network for cell segmentation",
#   *Medical Image Analysis* 56 (2019), doi:10.1016/j.media.2019.04.011;
# - **the blog post**: 郑之杰, "GRUU-Net: Integrated convolutional and gated recurrent neural
#   network for cell segmentation", blog post of 2021-01-25 on 0809zheng.github.io: a summary
#   of the paper (the *blog text*) with a PyTorch implementation (the *blog code*).
#
# The paper column below holds only what the blog's text or sentences quoted from the paper
# say; where a cell is marked "not stated", neither source tells us and the course does not
# guess. The `blog` preset (notebook 03) is exactly the blog's code; the `paper` preset
# changes the two rows marked with a star.
#
# | point | blog text | blog code | paper (as reported) | this course |
# |---|---|---|---|---|
# | update gate convention, eq. (4) | $h_t = z \odot h_{t-1} + (1 - z) \odot 	ilde h_t$ | `h_t = (1 - z_t) * h_t_1 + z_t * h_hat_t` | not stated | the blog's code: $z = 1$ takes the candidate |
# | down-sampling of the state $h$ in an FRDU ★ | "downsample" | bilinear interpolation | max pooling: a quoted sentence says bilinear interpolation made training less stable | max pooling (`state_downsample`; `blog`: bilinear) |
# | projection before up-sampling ★ | ConvNorm, then up-sample | 1×1 keeps all channels (up to 512), up-sampled to full resolution | not stated | 1×1 to $C_h$ channels at low resolution, then up-sample (`project_before_upsample`; `blog`: no) |
# | dense layers per level | "different numbers at different levels" | 3 everywhere | differ per level (as the blog's text reports) | `dense_layers`: one number or one per FRDU |
# | loss | not described | no training code | a focal-type loss (see the note below) | cross-entropy + soft Dice by default; focal loss in notebook 04 |
# | head | Res Block, then a 1×1 convolution | residual block, then a 3×3 convolution | not stated | the blog's code: 3×3 |
#
# Note on the loss: the blog post does not describe the training. That the paper uses a
# focal-type loss is reported of it, without its exact form; notebook 04 teaches the standard
# focal loss of Lin et al. (2017), not a reproduction of the paper's.
#
# ## 1. From a GRU to a convolutional GRU
#
# A recurrent unit keeps a **state** $h$ and refines it with every new input $x_t$. A GRU
# (Cho et al., 2014) decides *per state entry* how much to change. The equations below are
# written in the convention of the blog's code, which this course uses; Cho et al. write the
# update the other way round ($z$ keeps the old state: $h_t = z \odot h_{t-1} + (1 - z) \odot
# \tilde h_t$), as do `torch.nn.GRUCell` and the d2l book. Cho et al. also use $\tanh$ where
# GRUU-Net uses LeakyReLU:
#
# $$
# \begin{aligned}
# z_t &= \sigma(W_z x_t + U_z h_{t-1} + b_z) && \text{(1) update gate} \\
# r_t &= \sigma(W_r x_t + U_r h_{t-1} + b_r) && \text{(2) reset gate} \\
# \tilde h_t &= \mathrm{LReLU}\big(W_h x_t + U_h (r_t \odot h_{t-1}) + b_h\big)
#   && \text{(3) candidate} \\
# h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t && \text{(4) new state}
# \end{aligned}
# $$
#
# $\sigma$ is the logistic sigmoid, so both gates lie in $[0, 1]$; $\odot$ is elementwise.
# - $z_t$ close to 0: **keep** the old state; close to 1: **replace** it by the candidate.
# - $r_t$ close to 0: the candidate ignores the old state (a "reset"), close to 1: it uses it.
#
# In a **convolutional** GRU the state is an image $h \in \mathbb{R}^{C \times H \times W}$ and
# every product $W x$, $U h$ is a 3×3 convolution. Each pixel then has its own gates, computed
# from its neighbourhood. GRUU-Net uses LeakyReLU (slope 0.2) for the candidate instead of the
# classic $\tanh$, so the state is not squashed into $[-1, 1]$.
#
# > **Two conventions for $z$.** The blog post writes equation (4) as
# > $h_t = z_t \odot h_{t-1} + (1 - z_t) \odot \tilde h_t$, but its own code computes
# > `h_t = (1 - z_t) * h_t_1 + z_t * h_hat_t`, i.e. equation (4) above. Both describe the same
# > family of models (replace $z$ by $1 - z$, i.e. negate $W_z, U_z, b_z$), but a cell mixing
# > them is wrong. `torch.nn.GRUCell` uses the blog's text convention (that of Cho et al.), and
# > applies $r$ *after* the product $U_h h$. This course follows the blog's code: $z = 1$ means
# > "take the candidate".

# %% [markdown]
# ### Exercise 1: the state update, equation (4)
# Write `update_state(h_prev, h_cand, z)`. All three are tensors of the same shape.

# %% tags=["exercise"]
def update_state(h_prev, h_cand, z):
    """Equation (4): the new state, elementwise."""
    ### BEGIN SOLUTION
    return (1 - z) * h_prev + z * h_cand
    #> raise NotImplementedError("Student exercise: combine h_prev and h_cand with z")
    ### END SOLUTION


# %% tags=["check"]
check_update(update_state)
# hint("update")  # uncomment for a hint; each call shows the next one

# %% [markdown]
# **Are the two conventions really the same model?** Take a cell in this course's convention
# and build a cell in the blog text's convention from it by negating the weights and biases of
# the update gate, $W_z$, $U_z$ and $b_z$. Since $\sigma(-a) = 1 - \sigma(a)$, the other
# cell's gate is $z' = 1 - z$, and its update $z' \odot h_{t-1} + (1 - z') \odot \tilde h_t$
# equals ours. Checked on the same input:

# %%
ours = ConvGRUCell(x_channels=3, channels=4)  # this course: h = (1 - z) h_prev + z h_cand
theirs = ConvGRUCell(x_channels=3, channels=4)
theirs.load_state_dict(ours.state_dict())
with torch.no_grad():
    for conv in (theirs.conv_xz, theirs.conv_hz):  # negate W_z, U_z and both parts of b_z
        conv.weight.neg_()
        conv.bias.neg_()


def blog_text_step(cell, x, h):
    """One step in the blog text's convention: h_t = z . h_{t-1} + (1 - z) . h~_t."""
    z = torch.sigmoid(cell.conv_xz(x) + cell.conv_hz(h))
    r = torch.sigmoid(cell.conv_xr(x) + cell.conv_hr(h))
    h_cand = F.leaky_relu(cell.conv_xh(x) + cell.conv_hh(r * h), cell.slope)
    return z * h + (1 - z) * h_cand, z


x, h_prev = torch.randn(2, 3, 8, 8), torch.randn(2, 4, 8, 8)
with torch.no_grad():
    h_ours, z_ours, _ = ours(x, h_prev, return_gates=True)
    h_theirs, z_theirs = blog_text_step(theirs, x, h_prev)
    h_mixed, _ = blog_text_step(ours, x, h_prev)  # the blog's formula with our weights
print("gate of the other cell is 1 - z:", torch.allclose(z_theirs, 1 - z_ours, atol=1e-6))
print("same new state:", torch.allclose(h_ours, h_theirs, atol=1e-5))
print("mixing conventions gives the same state:", torch.allclose(h_ours, h_mixed, atol=1e-5))

# %% [markdown]
# ## 2. The ConvGRU cell
#
# `ConvGRUCell` (in `gruunet_edu.models`) creates one 3×3 convolution per term: `conv_xz`
# ($W_z$), `conv_hz` ($U_z$), `conv_xr`, `conv_hr`, `conv_xh`, `conv_hh`, each with a bias, and
# stores the LeakyReLU slope in `self.slope`. Your class below inherits these layers; you write
# only `forward`.
#
# ### Exercise 2: write the forward pass
# Inputs: `x` of shape (B, x_channels, H, W), `h` of shape (B, channels, H, W). Compute $z$,
# $r$, $\tilde h$ and $h_{new}$, one line per equation. Return `h_new`, or `(h_new, z, r)` when
# `return_gates` is true.

# %% tags=["exercise"]
class StudentConvGRU(ConvGRUCell):
    def forward(self, x, h, return_gates=False):
        ### BEGIN SOLUTION
        z = torch.sigmoid(self.conv_xz(x) + self.conv_hz(h))  # (1)
        r = torch.sigmoid(self.conv_xr(x) + self.conv_hr(h))  # (2)
        h_cand = F.leaky_relu(self.conv_xh(x) + self.conv_hh(r * h), self.slope)  # (3)
        h_new = (1 - z) * h + z * h_cand  # (4)
        #> # z = ...       equation (1)
        #> # r = ...       equation (2)
        #> # h_cand = ...  equation (3)
        #> # h_new = ...   equation (4)
        #> raise NotImplementedError("Student exercise: write equations (1) to (4)")
        ### END SOLUTION
        if return_gates:
            return h_new, z, r
        return h_new


# %% tags=["check"]
check_convgru(StudentConvGRU)
# hint("convgru")

# %% [markdown]
# The check copied the reference's weights into your cell and compared the outputs on several
# inputs: random states, a zero state, odd image sizes, and gates forced shut ($z = 0$) and wide
# open ($z = 1$). From here on the notebook uses your cell if it passed, the reference otherwise.

# %%
ConvGRU = use_student_or_reference(StudentConvGRU, ConvGRUCell)

# %% [markdown]
# ### Readable and fused
# The package has a second implementation with the same maths, `FusedConvGRUCell`: the three
# convolutions of $x$ are one convolution with $3C$ outputs and the two of $h$ in (1), (2) one
# with $2C$ outputs (fewer, larger convolutions run faster). Copying the weights shows they
# compute the same function and have the same number of parameters.

# %%
readable = ConvGRU(x_channels=3, channels=8)
fused = copy_convgru_weights(readable, FusedConvGRUCell(3, 8))
x, h = torch.randn(2, 3, 16, 16), torch.randn(2, 8, 16, 16)
with torch.no_grad():
    print("same output:", torch.allclose(readable(x, h), fused(x, h), atol=1e-5))
print("parameters:", count_parameters(readable), "readable,", count_parameters(fused), "fused")

# %% [markdown]
# ### Bonus (optional): a 1×1 ConvGRU is `torch.nn.GRUCell`
# With 1×1 kernels a ConvGRU treats every pixel on its own, so it is an ordinary GRU applied at
# every pixel. Write `student_gru_1x1(x, h, gru)`: the step of the `torch.nn.GRUCell` `gru` for
# every pixel of `x` (B, C_x, H, W) and `h` (B, C, H, W), computed with 1×1 convolutions
# (`F.conv2d`) from the cell's `weight_ih` (3C, C_x), `weight_hh` (3C, C), `bias_ih`, `bias_hh`.
# PyTorch's convention (see its documentation): gates stacked $r, z, n$;
# $n = \tanh(W_{in} x + b_{in} + r \odot (W_{hn} h + b_{hn}))$; $h' = (1 - z) \odot n + z \odot h$.
# The check compares your result with `gru` applied pixel by pixel and names the usual slips.
# Nothing later depends on it.

# %% tags=["exercise"]
def student_gru_1x1(x, h, gru):
    """torch.nn.GRUCell ``gru`` at every pixel, as 1x1 convolutions: (B, C, H, W)."""
    ### BEGIN SOLUTION
    c = gru.hidden_size
    gi = F.conv2d(x, gru.weight_ih[:, :, None, None], gru.bias_ih)  # (B, 3C, H, W)
    gh = F.conv2d(h, gru.weight_hh[:, :, None, None], gru.bias_hh)  # (B, 3C, H, W)
    r = torch.sigmoid(gi[:, :c] + gh[:, :c])
    z = torch.sigmoid(gi[:, c : 2 * c] + gh[:, c : 2 * c])
    n = torch.tanh(gi[:, 2 * c :] + r * gh[:, 2 * c :])
    return (1 - z) * n + z * h
    #> raise NotImplementedError("Student exercise: GRUCell as 1x1 convolutions")
    ### END SOLUTION


# %% tags=["check"]
check_gru_1x1(student_gru_1x1)
# hint("gru_1x1")

# %% [markdown]
# Compare with our cell: PyTorch's $z$ is our $1 - z$, its candidate uses $\tanh$, and its reset
# multiplies $W_{hn} h + b_{hn}$, after the state's convolution, where ours (and Cho et al.'s)
# multiplies $h$ before it. With 3×3 kernels, the reset after the convolution would let a pixel's
# gate scale what its *neighbours* contribute; before it, each neighbour's own gate decides.

# %% [markdown]
# ## 3. Watching the gates on a time-lapse
#
# In GRUU-Net the "time" steps are the FRDUs, one per scale (notebook 02). Gates are easiest to
# understand on real time, though, so here is a short synthetic time-lapse: the same nuclei
# drifting a few pixels per frame, with fresh noise in every frame.
#
# We set the weights of a one-channel cell **by hand** so that they can be read:
# - candidate $\tilde h_t = x_t$ (only the centre tap of $W_h$ is 1; $U_h = 0$, so $r$ plays no
#   role here);
# - update gate $z_t = \sigma\big(k\,(x_t - h_{t-1}) - b\big)$: it opens where the new frame is
#   **brighter** than the state (a nucleus arrives) and stays mostly shut elsewhere, where the
#   state averages frames and the noise drops.

# %%
frames, frame_labels = make_nuclei_sequence(seed=4, frames=8, size=64, drift=1.5, density=12)
frames = np.stack([percentile_normalize(f) for f in frames])
print("time-lapse:", frames.shape, "| nuclei:", int(frame_labels.max()))

k, b = 8.0, 2.5
cell = ConvGRU(x_channels=1, channels=1)
with torch.no_grad():
    for conv in (cell.conv_xz, cell.conv_hz, cell.conv_xr, cell.conv_hr, cell.conv_xh, cell.conv_hh):
        conv.weight.zero_()
        conv.bias.zero_()
    cell.conv_xh.weight[0, 0, 1, 1] = 1.0  # candidate = x
    cell.conv_xz.weight[0, 0, 1, 1] = k  # z grows with x ...
    cell.conv_hz.weight[0, 0, 1, 1] = -k  # ... and shrinks with h
    cell.conv_xz.bias.fill_(-b)

# %% [markdown]
# Run the cell over the frames (the progress bar is `tqdm.auto`: a widget in JupyterLab).

# %%
# NBVAL_IGNORE_OUTPUT
h = torch.zeros(1, 1, 64, 64)
states, gates = [], []
with torch.no_grad():
    for frame in tqdm(frames, desc="ConvGRU over frames"):
        x = torch.from_numpy(frame)[None, None]  # (1, 1, H, W)
        h, z, r = cell(x, h, return_gates=True)
        states.append(h[0, 0].numpy())
        gates.append(z[0, 0].numpy())

# %%
fig, axes = plt.subplots(3, 4, figsize=(12, 9))
for col, t in enumerate((0, 2, 5, 7)):
    axes[0, col].imshow(frames[t], cmap="gray", vmin=0, vmax=1)
    axes[0, col].set_title(f"frame x_{t}")
    axes[1, col].imshow(gates[t], cmap="magma", vmin=0, vmax=1)
    axes[1, col].set_title(f"update gate z_{t}")
    axes[2, col].imshow(states[t], cmap="gray", vmin=0, vmax=1)
    axes[2, col].set_title(f"state h_{t}")
for ax in axes.ravel():
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# What to look for: at $t = 0$ the state is empty and the gate opens on every nucleus. Later the
# gate is bright only on the *leading edge* of each moving nucleus, where the frame is brighter
# than the state. Elsewhere $z$ is small, so the state is a running average of the frames: less
# noisy than any single frame, but a nucleus that moved away leaves a fading trail, because this
# hand-made gate never opens for a *decrease*. A trained cell learns gates for both cases; in
# GRUU-Net it learns them per channel, from the features of every scale.

# %%
background = (frame_labels == 0).all(axis=0)  # pixels that no nucleus covers in any frame
noise_frame = frames[-1][background].std()
noise_state = states[-1][background].std()
gate_nuclei = np.mean([g[frame_labels[t] > 0].mean() for t, g in enumerate(gates[1:], 1)])
gate_background = np.mean([g[frame_labels[t] == 0].mean() for t, g in enumerate(gates[1:], 1)])
print("state less noisy than the last frame:", bool(noise_state < noise_frame))
print("gate wider open on nuclei than on background:", bool(gate_nuclei > gate_background))

# %% [markdown]
# **Question:** which weights would make the cell forget the trails?

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# *Answer:* the gate would have to open where the state is brighter than the frame as well,
# e.g. a second channel with the opposite sign of $k$, or $U_h$ and $r$ so that the candidate corrects the state; a trained
# network finds such combinations itself.

# %% [markdown]
# ### Think about it
# 1. Set $r_t = 0$ everywhere. What does the cell compute then, and which simpler layer is it?
# 2. The candidate uses LeakyReLU instead of $\tanh$. With $z_t$ in $[0, 1]$, can the state
#    grow without bound over many steps? Why might that matter less in GRUU-Net (9 steps in the
#    `paper` preset) than in a language model (thousands)?
# 3. In the time-lapse, which value of the bias $b$ would make the state simply copy every new
#    frame, and which would freeze it?

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Answers.**
# 1. The candidate forgets the state: $\tilde h_t = \mathrm{LReLU}(W_h * x_t + b)$, where $b$
#    collects the biases of both convolutions ($U_h * 0$ leaves only its bias). The cell is then
#    a convolution of the input, blended into the old state by $z_t$: a gated running average
#    (a leaky integrator) of conv features.
# 2. $h_t$ is a convex combination of $h_{t-1}$ and $\tilde h_t$, so it never exceeds the largest
#    candidate seen; but LeakyReLU does not bound the candidate, and $U_h$ can amplify the state
#    from step to step. Over 9 steps with BatchNorm before every GRU input this stays tame; over
#    thousands of steps an unbounded candidate could blow up, which is one reason language
#    models keep $\tanh$.
# 3. The gate is $z = \sigma(k\,(x_t - h_{t-1}) - b)$. A large positive $b$ shuts it
#    ($z \approx 0$): the state keeps whatever it holds (it is frozen). A large negative $b$
#    opens it everywhere ($z \approx 1$): $h_t = \tilde h_t = x_t$, a copy of the frame, noise
#    included.

# %% [markdown]
# ## Summary
# - A ConvGRU keeps an image-shaped state and updates each pixel through two sigmoid gates
#   computed by 3×3 convolutions: $z$ decides how much to change, $r$ how much of the old state
#   the candidate sees.
# - Conventions differ: this course's $z = 1$ means "take the candidate" (the blog's code),
#   the blog's text and `torch.nn.GRUCell` use the opposite.
# - The readable and fused cells compute the same function.
#
# **Next:** notebook 02 puts the ConvGRU into an FRDU, next to a dense block working at a lower
# resolution.
