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
# # 03 · GRUU-Net
#
# **What you will learn**
# - how GRUU-Net stacks FRDUs into a U-shaped path of scales while one ConvGRU state is refined
#   at full resolution after every FRDU;
# - the scale factor of every FRDU (exercise 1) and the network's forward pass (exercise 2);
# - what the blog's network (the code of 郑之杰's blog post of 2021-01-25 on 0809zheng.github.io)
#   and the paper's variant (Wollmann et al., 2019, doi:10.1016/j.media.2019.04.011) cost:
#   parameters, FLOPs, and the time of one training step;
# - how GRUU-Net compares with a plain U-Net of the same size.
#
# **Time:** about 40 minutes. **Prerequisites:** notebooks 01 and 02.

# %%
import statistics
import time

# %matplotlib inline
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from gruunet_edu.data import make_nuclei, percentile_normalize
from gruunet_edu.exercises import hint, use_student_or_reference
from gruunet_edu.exercises.bonus import check_o_shapes
from gruunet_edu.exercises.nb3_gruunet import check_factors, check_gruunet, reference_factors
from gruunet_edu.models import GRUUNet, GRUUNetConfig, build_model, count_flops, count_parameters
from gruunet_edu.viz.diagrams import network_diagram

_ = torch.manual_seed(0)

# %% [markdown]
# ## 1. The architecture
#
# GRUU-Net keeps a full-resolution state $h$ with $C_h$ channels and updates it once per FRDU,
# while the pooling stream $o$ goes down $S$ scales and up again, like a U-Net:
#
# $$
# \begin{aligned}
# h_0 = o_0 &= \mathrm{LReLU}(\mathrm{BN}(\mathrm{Conv}_{5\times5}(\text{image})))
#   && \text{stem, } C_h \text{ channels} \\
# o_t, h_t &= \mathrm{FRDU}_t(\mathrm{maxpool}_2(o_{t-1}),\ h_{t-1})
#   && t = 1, \dots, S \quad \text{(encoder, factor } 2^t) \\
# o_t, h_t &= \mathrm{FRDU}_t(\mathrm{up}_2(o_{t-1}),\ h_{t-1})
#   && t = S + 1, \dots, 2S - 1 \quad \text{(decoder)} \\
# \text{logits} &= \mathrm{Conv}_{3\times3}\big(h_T + \mathrm{LReLU}(\mathrm{BN}(\mathrm{Conv}_{3\times3}(h_T)))\big)
#   && \text{residual block and head}
# \end{aligned}
# $$
#
# Unlike a U-Net there are no skip connections: what the encoder found reaches the decoder
# through the state $h$, which every FRDU reads (down-sampled) and rewrites (at full
# resolution). The $2S - 1$ FRDUs are the "time steps" of the ConvGRU.
#
# The diagram is drawn from the configuration by `gruunet_edu.viz.diagrams.network_diagram`
# (the README shows the same figure): the stem makes $h_0 = o_0$, FRDU $t = 1, \dots, 2S-1$ sits
# at its scale with the shape of its $o_t$, and the state $h$ runs along the top at full
# resolution. Every FRDU reads it (dashed, down-sampled) and writes $h_t$ back (solid).
# Change the preset to `"tiny"` or `"blog"` to see theirs.

# %%
paper = GRUUNetConfig.preset("paper")
network_diagram(paper, image_size=256)

# %% [markdown]
# The scales alone, on a logarithmic axis (each scale halves the resolution), with the number
# of channels of $o$ at every step:

# %%
steps = range(1, paper.num_steps + 1)
fig, ax = plt.subplots(figsize=(8, 3.8))
ax.plot(steps, paper.frdu_factors, "o-", color="tab:blue")
ax.set_yscale("log", base=2)
ax.invert_yaxis()  # coarser scales further down, like the U of the diagram
for t, f, w in zip(steps, paper.frdu_factors, paper.widths, strict=True):
    side = -10 if t <= paper.num_scales else 10  # left of the encoder arm, right of the decoder
    if t == paper.num_scales:
        side = 0
    ax.annotate(
        f"{w} ch", (t, f), textcoords="offset points", xytext=(side, -14 if side == 0 else -3),
        ha={-10: "right", 10: "left", 0: "center"}[side], fontsize=8,
    )
ax.axhline(1, color="tab:red", lw=3)
ax.annotate(
    f"state h: full resolution, {paper.hidden_channels} channels", (1, 1),
    textcoords="offset points", xytext=(0, 6), color="tab:red", fontsize=9,
)
ax.set_xticks(list(steps))
factors_shown = [1] + sorted(set(paper.frdu_factors))
ax.set_yticks(factors_shown)
ax.set_yticklabels(["1"] + [f"1/{f}" for f in factors_shown[1:]])
ax.set_ylim(2 * max(factors_shown), 0.6)
ax.set_xlim(0.4, paper.num_steps + 0.6)
ax.set_xlabel("FRDU step t")
ax.set_ylabel("resolution of o (log scale)")
ax.set_title("GRUU-Net ('paper' preset): one FRDU per step")
plt.show()


# %% [markdown]
# ### Exercise 1: the scale factors
# Write `frdu_factors(num_scales)`: the factor $f$ of every FRDU, in order, for $S$ scales.
# For $S = 3$: the stream goes down to 1/2, 1/4, 1/8 and back up to 1/4, 1/2.

# %% tags=["exercise"]
def frdu_factors(num_scales):
    """[2, 4, ..., 2**S, 2**(S-1), ..., 2] as a list of ints."""
    raise NotImplementedError("Student exercise: write your code here")


# %% tags=["check"]
check_factors(frdu_factors)
# hint("factors")  # uncomment for a hint; each call shows the next one

# %%
factors = use_student_or_reference(frdu_factors, reference_factors)
print("paper preset:", factors(paper.num_scales), "| config says", list(paper.frdu_factors))


# %% [markdown]
# ## 2. The forward pass
#
# `GRUUNet(config)` owns `self.stem`, the list `self.frdus`, and `self.readout(h)` (the residual
# block followed by the head). `self.config.num_scales` is $S$.
#
# ### Exercise 2: write `forward(x)` for an input whose size is a multiple of $2^S$
# Return the logits, shape (B, num_classes, H, W). (The package's `GRUUNet.forward` also pads
# other sizes and can return the states; you do not need that here.)

# %% tags=["exercise"]
class StudentGRUUNet(GRUUNet):
    def forward(self, x):
        raise NotImplementedError("Student exercise: write your code here")


# %% tags=["check"]
check_gruunet(StudentGRUUNet)
# hint("gruunet")

# %% [markdown]
# The network on an image, with the `tiny` preset (3 scales, 5 FRDUs, $C_h = 16$). The
# package's `GRUUNet` returns the states of every step on request: $h$ always has the image's
# size, $o$ shrinks and grows.

# %%
Net = use_student_or_reference(StudentGRUUNet, GRUUNet)
tiny = GRUUNetConfig.preset("tiny")
image, _ = make_nuclei(seed=4, size=64)
x = torch.from_numpy(percentile_normalize(image))[None, None]  # (1, 1, 64, 64)
net = Net(tiny).eval()
with torch.no_grad():
    print("logits:", tuple(net(x).shape))
    _, states = GRUUNet(tiny).eval()(x, return_states=True)
for t, (step, f) in enumerate(zip(states, tiny.frdu_factors), start=1):
    print(f"FRDU {t} (factor {f:2d}): o {tuple(step.o.shape)}, h {tuple(step.h.shape)}")


# %% [markdown]
# ### Bonus (optional): the pooling stream's shapes
# Write `student_o_shapes(config, height, width)`: the shape `(C, h, w)` of $o_t$ for every step
# $t = 1, \dots, 2S-1$ of a GRUU-Net with this config on a `height` × `width` image, from the
# config alone. Sizes that are not a multiple of $2^S$ are padded by the model and cropped back,
# so $o_t$ has $\lceil H / f_t \rceil$ rows. The printout above is one example to compare with.

# %% tags=["exercise"]
def student_o_shapes(config, height, width):
    """[(C_t, ceil(H / f_t), ceil(W / f_t)) for t = 1 ... 2S-1]."""
    raise NotImplementedError("Student exercise: the shape of o_t for every step")


# %% tags=["check"]
check_o_shapes(student_o_shapes)
# hint("o_shapes")

# %% [markdown]
# ## 3. Blog network, paper variant and a U-Net
#
# The presets differ in two choices inside every FRDU (see notebook 02, and notebook 01's table
# of where the blog's text, the blog's code, the paper and this course differ):
#
# | preset | down-sampling of $h$ | 1×1 projection before up-sampling | ConvGRU |
# |---|---|---|---|
# | `blog` | bilinear | no: all channels of $o$ (up to 512) are up-sampled | readable |
# | `paper` | max-pool | yes: only $C_h = 32$ channels are up-sampled | fused |
#
# The baseline is a plain U-Net whose base width is chosen so that its parameter count is within
# 10 % of the GRUU-Net of the same config (`build_model(config, arch="unet")`).
#
# FLOPs are counted by `count_flops` (PyTorch's `FlopCounterMode`) for one 256×256 image. The
# models are built on PyTorch's `meta` device, which tracks shapes without allocating or
# computing anything, so counting is instant even for the large presets.

# %%
def gflops(model, size=256):
    """Forward FLOPs (in 10^9) for one (1, 1, size, size) image, counted on the meta device."""
    return count_flops(model, size=size) / 1e9


print(f"{'preset':8s} {'model':8s} {'parameters':>11s} {'GFLOPs/256²':>12s}")
table = {}
for name in ("blog", "paper", "tiny"):
    config = GRUUNetConfig.preset(name)
    for arch in ("gruunet", "unet"):
        with torch.device("meta"):
            model = build_model(config, arch)
        table[name, arch] = (count_parameters(model), gflops(model))
        params, flops = table[name, arch]
        print(f"{name:8s} {arch:8s} {params:11,d} {flops:12.1f}")

# %%
ratio_blog = table["blog", "gruunet"][1] / table["paper", "gruunet"][1]
ratio_unet = table["paper", "gruunet"][1] / table["paper", "unet"][1]
print(f"blog / paper FLOPs: {ratio_blog:.1f}x")
print(f"paper GRUU-Net / U-Net FLOPs: {ratio_unet:.0f}x")


# %% [markdown]
# Projecting before up-sampling makes the paper variant about 3.5 times cheaper than the blog's
# network. Both cost far more than a U-Net of the same size: every FRDU runs a ConvGRU at full
# resolution, so GRUU-Net spends its compute on the image's pixels, many times over, where a
# U-Net spends it at low resolutions. Whether that buys accuracy is the question of notebook 05.
#
# ### One training step
# The time of one training step (forward, backward, optimiser) on two small 32×32 images, on this
# machine. A first step is slower than the rest (memory is allocated, kernels are chosen), and
# other programs on the machine slow down single steps at random, so the cell runs one warm-up
# step, then several timed ones, and reports the median wall time and the median CPU time of
# this process (the CPU time does not count waiting for a busy machine).

# %%
# NBVAL_IGNORE_OUTPUT
def step_times(model, size=32, repeats=5):
    """Median wall and CPU seconds of one SGD step on two (1, size, size) images."""
    x, y = torch.rand(2, 1, size, size), torch.randint(0, 3, (2, size, size))
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up, not timed
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return statistics.median(wall), statistics.median(cpu)


times = {}
print(f"median of 5 steps after a warm-up, 2 x 32x32, {torch.get_num_threads()} CPU threads")
for name, arch in (("blog", "gruunet"), ("paper", "gruunet"), ("paper", "unet")):
    times[name, arch] = step_times(build_model(GRUUNetConfig.preset(name), arch))
    wall, cpu = times[name, arch]
    print(f"{name:6s} {arch:8s} {wall * 1000:7.0f} ms wall {cpu * 1000:7.0f} ms CPU per step")
wall_ratio = times["blog", "gruunet"][0] / times["paper", "gruunet"][0]
print(f"blog / paper step time in this run: {wall_ratio:.1f}x (FLOPs: {ratio_blog:.1f}x)")

# %% [markdown]
# The FLOP counts are exact and the same on every machine; the times are measurements of this
# run. On tiny 32×32 images much of a step is fixed overhead (launching operations, the
# optimiser), so the measured ratio is usually smaller than the FLOP ratio, and a machine shared
# with other work can shift it further. The README's benchmark
# (`benchmarks/bench_model.py`, 256×256 images, repeated) measures it under controlled
# conditions. Trust the FLOPs for "how much work", and a timing only as a median of repeats.

# %% [markdown]
# ### Think about it
# 1. The paper trained GRUU-Net on real microscopy images, much larger than the course's
#    synthetic ones. Which preset would you train on a laptop, and which on a GPU?
# 2. GRUU-Net has no skip connections. How does what FRDU 2 found at 1/4 resolution reach FRDU 8,
#    which works at the same scale?
# 3. Per pixel, where does GRUU-Net spend most of its FLOPs: in the dense blocks or in the
#    ConvGRUs? What does that predict about the FLOPs of a GRUU-Net with twice the $C_h$?

# %% [markdown]
# ## Summary
# - GRUU-Net = stem, $2S - 1$ FRDUs along a U-shaped path of scales, one ConvGRU state refined
#   at full resolution after each, then a residual block and a 3×3 head.
# - The blog's network up-samples every channel of $o$ before its ConvGRU; projecting first (the
#   paper variant) saves most of the FLOPs.
# - A U-Net with the same number of parameters needs a small fraction of GRUU-Net's FLOPs.
#
# **Next:** notebook 04 trains the network.
