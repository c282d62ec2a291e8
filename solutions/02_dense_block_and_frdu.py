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
# # 02 · Dense block and FRDU
#
# **What you will learn**
# - how a DenseNet block reuses features by *concatenating* every layer's output (exercise 1);
# - the Full-Resolution Dense Unit (FRDU), GRUU-Net's building block: a pooling stream $o$ at a
#   low resolution and a ConvGRU state $h$ at full resolution, merged once per unit
#   (exercise 2);
# - why the state is down-sampled by max-pooling rather than bilinear interpolation.
#
# **Time:** about 35 minutes. **Prerequisites:** notebook 01 (the ConvGRU).

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from gruunet_edu.data import make_nuclei, percentile_normalize
from gruunet_edu.exercises import hint, use_student_or_reference
from gruunet_edu.exercises.bonus import check_dense_parameters
from gruunet_edu.exercises.nb2_frdu import check_dense_block, check_frdu
from gruunet_edu.models import FRDU, DenseBlock, GRUUNetConfig, count_parameters
from gruunet_edu.viz.diagrams import frdu_diagram

_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. The dense block
#
# A dense block (Huang et al., DenseNet, 2017) of $k$ layers gives every layer the
# concatenation of the block input and **all** earlier outputs:
#
# $$ x_\ell = [x_0, y_1, \dots, y_{\ell-1}], \qquad y_\ell = \mathrm{DenseLayer}_\ell(x_\ell), $$
#
# so layer $\ell$ reads $C_0 + (\ell - 1)\,g$ channels, with $g$ the *growth rate* (channels per
# layer). A dense layer is the "BC" bottleneck form, BN–ReLU–1×1 conv ($b \cdot g$ channels) then
# BN–ReLU–3×3 conv ($g$ channels). After the last layer a *transition* (BN–ReLU–1×1 conv) maps
# $[x_0, y_1, \dots, y_k]$ to the output width, followed by BN and ReLU:
#
# $$ \mathrm{out} = \mathrm{ReLU}\big(\mathrm{BN}(\mathrm{Transition}([x_0, y_1, \dots, y_k]))\big). $$
#
# `DenseBlock` in `gruunet_edu.models` holds `self.layers` (a list of dense layers),
# `self.transition`, `self.norm` and `self.relu`.
#
# ### Exercise 1: write the dense block's forward pass
# Input `x`: (B, in_features, H, W); output: (B, out_features, H, W).

# %% tags=["exercise"]
class StudentDenseBlock(DenseBlock):
    def forward(self, x):
        ### BEGIN SOLUTION
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))  # each adds g channels
        y = self.transition(torch.cat(features, dim=1))
        return self.relu(self.norm(y))
        #> raise NotImplementedError("Student exercise: the dense block's forward pass")
        ### END SOLUTION


# %% tags=["check"]
check_dense_block(StudentDenseBlock)
# hint("dense_block")  # uncomment for a hint; each call shows the next one

# %% [markdown]
# How the channels grow inside a block of the `paper` preset's first FRDU (64 channels, 3
# layers, growth rate 32):

# %%
Dense = use_student_or_reference(StudentDenseBlock, DenseBlock)
block = Dense(64, 64, num_layers=3, growth_rate=32, bn_size=2)
for i, layer in enumerate(block.layers, start=1):
    print(f"layer {i} reads {layer.norm1.num_features} channels, adds {layer.conv2.out_channels}")
print("transition reads", block.transition[0].num_features, "channels")
print("parameters:", count_parameters(block))

# %% [markdown]
# ## 2. The Full-Resolution Dense Unit
#
# GRUU-Net (Wollmann et al., 2019) follows FRRN's full-resolution units: two streams run side by
# side. The **pooling stream** $o$ goes down and up the scales like a U-Net; the **state** $h$
# (a ConvGRU state with $C_h$ channels) always keeps the full resolution. An FRDU at scale
# factor $f$ (its $o$ lives at $1/f$ of the image size) computes
#
# $$
# \begin{aligned}
# o_t^{in} &= \mathrm{ConvNorm}_{1\times1}\big([\,o_{t-1},\ \mathrm{down}_f(h_{t-1})\,]\big)
#   && \text{merge the streams at low resolution} \\
# o_t &= \mathrm{Dense}(o_t^{in}) && \text{features at scale } f \\
# x_t &= \mathrm{up}_f\big(\mathrm{ConvNorm}_{1\times1}(o_t)\big)
#   && \text{project to } C_h \text{ channels, up-sample} \\
# h_t &= \mathrm{ConvGRU}(x_t, h_{t-1}) && \text{update the full-resolution state}
# \end{aligned}
# $$
#
# ConvNorm is a 1×1 convolution followed by BatchNorm. The text of the blog post (郑之杰,
# 2021-01-25, on 0809zheng.github.io; see notebook 01's sources) writes the merge as a sum,
# $\mathrm{down}(h_{t-1}) + o_{t-1}$, but its code concatenates `[o_t_1, h_t_1]` as above.
#
# `FRDU` holds `self.merge`, `self.dense`, `self.project` (the two ConvNorms), `self.gru` and
# `self.down(h)`, which max-pools by `self.factor`.
#
# ### Exercise 2: write the FRDU's forward pass
# Inputs: `o_prev` (B, in_channels, H/f, W/f) and `h_prev` (B, C_h, H, W). Return `(o, h)`.
# Up-sample with `F.interpolate(..., size=h_prev.shape[-2:], mode="bilinear")`.

# %% tags=["exercise"]
class StudentFRDU(FRDU):
    def forward(self, o_prev, h_prev):
        ### BEGIN SOLUTION
        o = self.merge(torch.cat([o_prev, self.down(h_prev)], dim=1))  # (B, C, H/f, W/f)
        o = self.dense(o)  # (B, C, H/f, W/f)
        x = F.interpolate(self.project(o), size=h_prev.shape[-2:], mode="bilinear")  # (B, C_h, H, W)
        h = self.gru(x, h_prev)  # (B, C_h, H, W)
        #> raise NotImplementedError("Student exercise: merge, dense block, project + up-sample, GRU")
        ### END SOLUTION
        return o, h


# %% tags=["check"]
check_frdu(StudentFRDU)
# hint("frdu")

# %% [markdown]
# ### The FRDU's data flow
# The diagram is drawn from a model configuration by `gruunet_edu.viz.diagrams.frdu_diagram`:
# here the third FRDU ($t = 3$, factor 8) of the `paper` preset for a 256×256 image. The top
# row is the pooling stream at 1/8 of the resolution, the bottom row the full-resolution state;
# every arrow carries channels × height × width. Try `GRUUNetConfig.preset("blog")`: its
# down-sampling is bilinear and $x_t$ keeps all 256 channels at full resolution.

# %%
frdu_diagram(GRUUNetConfig.preset("paper"), step=3, image_size=256)

# %% [markdown]
# ## 3. The two streams on an image
#
# An untrained FRDU already shows the shapes: the stream $o$ is coarse, the state $h$ keeps every
# pixel. We feed it a 64×64 image through a 5×5 "stem" convolution, as GRUU-Net does.

# %%
Unit = use_student_or_reference(StudentFRDU, FRDU)
image, labels = make_nuclei(seed=4, size=64)
x = torch.from_numpy(percentile_normalize(image))[None, None]  # (1, 1, 64, 64)

c_h = 8
stem = torch.nn.Conv2d(1, c_h, 5, padding=2)
units = [Unit(c_h, 16, c_h, factor=2, num_layers=2, growth_rate=8).eval(),
         Unit(16, 32, c_h, factor=4, num_layers=2, growth_rate=8).eval()]
with torch.no_grad():
    h = stem(x)  # h_0: (1, C_h, 64, 64)
    o = h
    outputs = []
    for unit in units:
        o = F.max_pool2d(o, 2)  # the pooling stream goes one scale down
        o, h = unit(o, h)
        outputs.append((o, h))
        print(f"FRDU factor {unit.factor}: o {tuple(o.shape)}, h {tuple(h.shape)}")

# %%
fig, axes = plt.subplots(1, 5, figsize=(15, 3.2))
axes[0].imshow(image, cmap="gray")
axes[0].set_title("image 64x64")
for i, (o, h) in enumerate(outputs):
    axes[1 + 2 * i].imshow(o[0].abs().mean(0), cmap="viridis")
    axes[1 + 2 * i].set_title(f"|o| after FRDU {i + 1}: {o.shape[-1]}x{o.shape[-2]}")
    axes[2 + 2 * i].imshow(h[0].abs().mean(0), cmap="viridis")
    axes[2 + 2 * i].set_title(f"|h| after FRDU {i + 1}: {h.shape[-1]}x{h.shape[-2]}")
for ax in axes:
    ax.axis("off")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## 4. Down-sampling the state: max-pool or bilinear?
#
# The deepest FRDU of the full network works at factor 32: the 32-channel state must shrink by
# 32 in each direction. The blog's code uses `F.interpolate(h, scale_factor=1/32,
# mode="bilinear")`. Without anti-aliasing, bilinear interpolation reads only the 2×2 pixels
# nearest each output point: it *samples* 4 of every 1024 pixels and can miss a nucleus
# completely. Max-pooling keeps the strongest response of every 32×32 window. A sentence
# attributed to the paper says that bilinear interpolation in place of max pooling made training
# less stable (we know it as that quoted sentence, not from a section of the paper we could
# point to); the course uses max-pooling by default (`state_downsample="maxpool"`; the `blog`
# preset keeps the blog's choice).

# %%
state = torch.zeros(1, 1, 128, 128)
state[0, 0, 40:48, 70:78] = 1.0  # one small bright "nucleus" in the state
pooled = F.max_pool2d(state, 32)
sampled = F.interpolate(state, scale_factor=1 / 32, mode="bilinear")
print("max-pool keeps the nucleus:", bool(pooled.max() == 1.0))
print("bilinear keeps the nucleus:", bool(sampled.max() > 0.5), f"(max {float(sampled.max()):.2f})")

# %% [markdown]
# ### Bonus (optional): the size of a dense block
# Write `student_dense_parameters(in_features, out_features, num_layers, growth_rate, bn_size)`:
# the number of parameters of `DenseBlock(in_features, out_features, num_layers, growth_rate,
# bn_size)`, from the description in section 1 alone (no `count_parameters`). All its
# convolutions are bias-free; every BatchNorm has a weight and a bias per channel. The check
# compares with the real block for four sizes, including the 512-channel block of the deepest
# FRDU.

# %% tags=["exercise"]
def student_dense_parameters(in_features, out_features, num_layers, growth_rate, bn_size):
    """Parameters of DenseBlock(in_features, out_features, num_layers, growth_rate, bn_size)."""
    ### BEGIN SOLUTION
    total, inner = 0, bn_size * growth_rate
    for layer in range(num_layers):
        c = in_features + layer * growth_rate  # the channels layer `layer` reads
        total += 2 * c + c * inner + 2 * inner + 9 * inner * growth_rate  # BN, 1x1, BN, 3x3
    c = in_features + num_layers * growth_rate
    return total + 2 * c + c * out_features + 2 * out_features  # BN, 1x1 transition, BN
    #> raise NotImplementedError("Student exercise: count the dense block's parameters")
    ### END SOLUTION


# %% tags=["check"]
check_dense_parameters(student_dense_parameters)
# hint("dense_parameters")

# %% [markdown]
# ### Think about it
# 1. Why does the FRDU project $o_t$ to $C_h$ channels *before* up-sampling?
# 2. The blog's text adds $\mathrm{down}(h_{t-1})$ to $o_{t-1}$; its code concatenates them.
#    Which of the two can work in every FRDU of the network, and why?
# 3. The deepest FRDU of the `paper` preset works at factor 32 on a 256×256 image: $o$ is 8×8.
#    What does that FRDU add to the state that the first one (factor 2) cannot?

# %% [markdown] tags=["solution"] jupyter={"source_hidden": true}
# **Answers.**
# 1. Up-sampling then runs on $C_h = 32$ channels instead of up to 512, and the ConvGRU's 3×3
#    convolutions of $x_t$ read 32 instead of 512 channels at full resolution. The blog's code
#    up-samples all channels of $o_t$; notebook 03 measures the difference in FLOPs.
# 2. Concatenation. The state has $C_h = 32$ channels, the pooling stream 64 to 512: a sum needs
#    equal channel counts, so it would need an extra projection (or $C = C_h$ everywhere). With
#    concatenation the 1×1 ConvNorm that follows learns how to mix the two.
# 3. Context. Every pixel of the 8×8 $o$ summarises a 32×32 window, and its 3×3 convolutions
#    reach about 96×96 pixels of the image: enough to see whole nuclei and their neighbours, so
#    the GRU can, for instance, tell a nucleus from a bright speck of background. At factor 2 a
#    3×3 convolution sees only about 6×6 pixels.

# %% [markdown]
# ## Summary
# - A dense block concatenates features: layer $\ell$ reads $C_0 + (\ell - 1)g$ channels.
# - An FRDU merges the low-resolution stream $o$ with the down-sampled full-resolution state $h$,
#   processes them with a dense block, and sends the result back up to update $h$ with a ConvGRU.
# - Max-pooling the state cannot miss a small bright object; bilinear sampling can.
#
# **Next:** notebook 03 stacks FRDUs into GRUU-Net.
