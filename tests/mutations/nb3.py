"""Notebook 03: ``frdu_factors(num_scales)`` and ``StudentGRUUNet.forward``."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from gruunet_edu.models import GRUUNet

# ------------------------------------------------------------------------------ factors


def encoder_only(s):
    return [2**i for i in range(1, s + 1)]


def bottom_twice(s):
    down = [2**i for i in range(1, s + 1)]
    return down + down[::-1]


def starts_at_one(s):
    down = [2**i for i in range(s)]
    return down + down[-2::-1]


def hard_wired(s):
    return [2, 4, 8, 4, 2]


def as_tuple(s):
    down = tuple(2**i for i in range(1, s + 1))
    return down + down[-2::-1]


def generator(s):
    down = [2**i for i in range(1, s + 1)]
    return (f for f in down + down[-2::-1])


def floats(s):
    down = [2.0**i for i in range(1, s + 1)]
    return down + down[-2::-1]


def off_by_one(s):
    down = [2**i for i in range(1, s)]
    return down + down[-2::-1]


def decoder_ascending(s):
    down = [2**i for i in range(1, s + 1)]
    return down + down[:-1]


def decoder_misses_two(s):
    down = [2**i for i in range(1, s + 1)]
    return down + down[-2:0:-1]


def exponents(s):
    down = list(range(1, s + 1))
    return down + down[-2::-1]


_CACHE = []


def global_list(s):
    for i in range(1, s + 1):
        _CACHE.append(2**i)
    return _CACHE + _CACHE[-2::-1]


def multiples(s):
    down = [2 * i for i in range(1, s + 1)]
    return down + down[-2::-1]


def numpy_array(s):
    down = 2 ** np.arange(1, s + 1)
    return np.concatenate([down, down[-2::-1]])


def loop(s):
    out = []
    for i in range(1, s + 1):
        out.append(2**i)
    for i in range(s - 1, 0, -1):
        out.append(2**i)
    return out


def shifts(s):
    return [1 << i for i in range(1, s + 1)] + [1 << i for i in reversed(range(1, s))]


# ------------------------------------------------------------------------------ network


def _net(body):
    class Net(GRUUNet):
        def forward(self, x):
            return body(self, x)

    Net.__name__ = f"Net_{body.__name__}"
    return Net


def _forward(
    self,
    x,
    *,
    carry=True,
    up="bilinear",
    pool=F.max_pool2d,
    readout=None,
    scales=None,
    detach=False,
):
    h = self.stem(x)
    o, h0 = h, h
    s = self.config.num_scales if scales is None else scales
    for t, frdu in enumerate(self.frdus):
        if t < s:
            o = pool(o, 2)
        else:
            o = F.interpolate(o, scale_factor=2, mode=up)
        o, h_new = frdu(o, h.detach() if detach else h)
        h = h_new if carry else h0
    return (readout or self.readout)(h)


@_net
def n_state_not_carried(self, x):
    return _forward(self, x, carry=False)


@_net
def n_nearest(self, x):
    return _forward(self, x, up="nearest")


@_net
def n_no_residual(self, x):
    return _forward(self, x, readout=self.head)


@_net
def n_no_pooling(self, x):
    h = self.stem(x)
    o = h
    for frdu in self.frdus:
        o, h = frdu(o, h)
    return self.readout(h)


@_net
def n_three_scales(self, x):
    return _forward(self, x, scales=3)


@_net
def n_five_steps(self, x):
    h = self.stem(x)
    o = h
    for t in range(5):  # the notebook's tiny preset has 5 FRDUs
        if t < self.config.num_scales:
            o = F.max_pool2d(o, 2)
        else:
            o = F.interpolate(o, scale_factor=2, mode="bilinear")
        o, h = self.frdus[t](o, h)
    return self.readout(h)


@_net
def n_avg_pool(self, x):
    return _forward(self, x, pool=F.avg_pool2d)


@_net
def n_detached(self, x):
    return _forward(self, x, detach=True)


@_net
def n_no_grad(self, x):
    with torch.no_grad():
        return _forward(self, x)


@_net
def n_no_skip(self, x):
    return _forward(self, x, readout=lambda h: self.head(self.residual(h)))


@_net
def n_off_by_one(self, x):
    h = self.stem(x)
    o = h
    for t, frdu in enumerate(self.frdus):
        if t <= self.config.num_scales:
            o = F.max_pool2d(o, 2)
        else:
            o = F.interpolate(o, scale_factor=2, mode="bilinear")
        o, h = frdu(o, h)
    return self.readout(h)


@_net
def n_no_stem(self, x):
    h = x
    o = h
    for t, frdu in enumerate(self.frdus):
        o = (
            F.max_pool2d(o, 2)
            if t < self.config.num_scales
            else F.interpolate(o, scale_factor=2, mode="bilinear")
        )
        o, h = frdu(o, h)
    return self.readout(h)


@_net
def n_returns_tuple(self, x):
    h = self.stem(x)
    o = h
    for t, frdu in enumerate(self.frdus):
        o = (
            F.max_pool2d(o, 2)
            if t < self.config.num_scales
            else F.interpolate(o, scale_factor=2, mode="bilinear")
        )
        o, h = frdu(o, h)
    return self.readout(h), h


@_net
def n_pool_stem_once(self, x):
    h = self.stem(x)
    o = F.max_pool2d(h, 2)
    for t, frdu in enumerate(self.frdus):
        if 0 < t < self.config.num_scales:
            o = F.max_pool2d(o, 2)
        elif t >= self.config.num_scales:
            o = F.interpolate(o, scale_factor=2, mode="area")
        o, h = frdu(o, h)
    return self.readout(h)


@_net
def n_align_corners(self, x):
    h = self.stem(x)
    o = h
    for t, frdu in enumerate(self.frdus):
        if t < self.config.num_scales:
            o = F.max_pool2d(o, 2)
        else:
            o = F.interpolate(o, scale_factor=2, mode="bilinear", align_corners=True)
        o, h = frdu(o, h)
    return self.readout(h)


@_net
def n_softmax(self, x):
    return torch.softmax(_forward(self, x), dim=1)


@_net
def n_factors(self, x):
    state = self.stem(x)
    stream = state
    previous = 1
    for factor, frdu in zip(self.config.frdu_factors, self.frdus, strict=True):
        if factor > previous:
            stream = F.max_pool2d(stream, kernel_size=2)
        else:
            stream = F.interpolate(
                stream, size=(x.shape[-2] // factor, x.shape[-1] // factor), mode="bilinear"
            )
        stream, state = frdu(stream, state)
        previous = factor
    return self.readout(state)


@_net
def n_while(self, x):
    h = self.stem(x)
    o = h
    t = 0
    while t < len(self.frdus):
        going_down = t < self.config.num_scales
        o = (
            F.max_pool2d(o, 2)
            if going_down
            else F.interpolate(o, scale_factor=2.0, mode="bilinear")
        )
        o, h = self.frdus[t](o, h)
        t += 1
    logits = self.head(h + self.residual(h))
    return logits


WRONG = {
    "factors": [
        ("encoder only", encoder_only, "only the encoder"),
        ("bottom scale twice", bottom_twice, "bottom scale"),
        ("starts at 1", starts_at_one, "starts at 1"),
        ("hard-wired S = 3", hard_wired, "num_scales"),
        ("a tuple", as_tuple, "a list"),
        ("a generator", generator, "a list"),
        ("floats", floats, "ints"),
        ("one scale too few", off_by_one, "one scale"),
        ("decoder ascending", decoder_ascending, "decoder"),
        ("decoder misses the last 2", decoder_misses_two, "end"),
        ("exponents", exponents, "exponents"),
        ("a global list", global_list, "twice"),
        ("multiples of 2", multiples, "2 * i"),
        ("a NumPy array", numpy_array, "a list"),
    ],
    "gruunet": [
        ("state not carried", n_state_not_carried, "state is not carried"),
        ("nearest up-sampling", n_nearest, "'nearest'"),
        ("no residual block", n_no_residual, "residual block is skipped"),
        ("no pooling", n_no_pooling, "one scale down"),
        ("hard-wired 3 scales", n_three_scales, "self.config.num_scales"),
        ("hard-wired 5 FRDUs", n_five_steps, "loop over self.frdus"),
        ("average pooling", n_avg_pool, "average pooling"),
        ("state detached", n_detached, "no gradient flows"),
        ("no_grad forward", n_no_grad, "no gradient flows"),
        ("residual without the skip", n_no_skip, "h + self.residual(h)"),
        ("decoder starts one step late", n_off_by_one, "one scale down"),
        ("no stem", n_no_stem, "self.stem"),
        ("returns a tuple", n_returns_tuple, "only the logits"),
        ("area up-sampling", n_pool_stem_once, "'area'"),
        ("align_corners=True", n_align_corners, "align_corners=True"),
        ("probabilities", n_softmax, "returns probabilities"),
    ],
}

RIGHT = {
    "factors": [("two loops", loop), ("bit shifts", shifts)],
    "gruunet": [("config factors", n_factors), ("while loop", n_while)],
}
