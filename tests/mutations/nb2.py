"""Notebook 02: ``StudentDenseBlock.forward`` and ``StudentFRDU.forward``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from gruunet_edu.models import FRDU, DenseBlock

# ------------------------------------------------------------------------------ dense block


def _block(body):
    class Block(DenseBlock):
        def forward(self, x):
            return body(self, x)

    Block.__name__ = f"Block_{body.__name__}"
    return Block


@_block
def d_reversed(self, x):
    features = [x]
    for layer in self.layers:
        features.insert(0, layer(torch.cat(features, dim=1)))
    return self.relu(self.norm(self.transition(torch.cat(features, dim=1))))


@_block
def d_chain(self, x):
    y = x
    for layer in self.layers:
        y = layer(y)
    return self.relu(self.norm(self.transition(y)))


@_block
def d_no_final(self, x):
    features = [x]
    for layer in self.layers:
        features.append(layer(torch.cat(features, dim=1)))
    return self.transition(torch.cat(features, dim=1))


@_block
def d_no_norm(self, x):
    features = [x]
    for layer in self.layers:
        features.append(layer(torch.cat(features, dim=1)))
    return self.relu(self.transition(torch.cat(features, dim=1)))


@_block
def d_no_relu(self, x):
    features = [x]
    for layer in self.layers:
        features.append(layer(torch.cat(features, dim=1)))
    return self.norm(self.transition(torch.cat(features, dim=1)))


@_block
def d_last_only(self, x):
    features = [x]
    for layer in self.layers:
        features.append(layer(torch.cat(features, dim=1)))
    return self.relu(self.norm(self.transition(features[-1])))


@_block
def d_three_layers(self, x):
    features = [x]
    for i in range(3):  # the notebook's block has 3 layers
        if i < len(self.layers):
            features.append(self.layers[i](torch.cat(features, dim=1)))
    return self.relu(self.norm(self.transition(torch.cat(features, dim=1))))


@_block
def d_detached(self, x):
    features = [x]
    for layer in self.layers:
        features.append(layer(torch.cat(features, dim=1)).detach())
    return self.relu(self.norm(self.transition(torch.cat(features, dim=1))))


@_block
def d_no_grad(self, x):
    features = [x]
    with torch.no_grad():
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
    return self.relu(self.norm(self.transition(torch.cat(features, dim=1))))


@_block
def d_sum(self, x):
    features = [x]
    for layer in self.layers:
        features.append(layer(sum(features)))
    return self.relu(self.norm(self.transition(torch.cat(features, dim=1))))


@_block
def d_batch_dim(self, x):
    features = [x]
    for layer in self.layers:
        features.append(layer(torch.cat(features, dim=0)))
    return self.relu(self.norm(self.transition(torch.cat(features, dim=0))))


@_block
def d_input_only(self, x):
    for layer in self.layers:
        layer(x)
    return self.relu(self.norm(self.transition(x)))


@_block
def d_without_input(self, x):
    features = [x]
    for layer in self.layers:
        features.append(layer(torch.cat(features, dim=1)))
    return self.relu(self.norm(self.transition(torch.cat(features[1:], dim=1))))


@_block
def d_extra_relu(self, x):
    features = [x]
    for layer in self.layers:
        features.append(layer(torch.cat(features, dim=1)))
    return self.relu(self.norm(self.transition(F.relu(torch.cat(features, dim=1)))))


@_block
def d_growing(self, x):
    stack = x
    for layer in self.layers:
        stack = torch.cat((stack, layer(stack)), 1)
    return F.relu(self.norm(self.transition(stack)))


@_block
def d_indexed(self, x):
    outputs = [x]
    for i in range(len(self.layers)):
        outputs += [self.layers[i](torch.cat(outputs, 1))]
    y = self.norm(self.transition(torch.cat(outputs, 1)))
    return y.clamp(min=0)


# ------------------------------------------------------------------------------ FRDU


def _unit(body):
    class Unit(FRDU):
        def forward(self, o_prev, h_prev):
            return body(self, o_prev, h_prev)

    Unit.__name__ = f"Unit_{body.__name__}"
    return Unit


def _rest(self, merged, h_prev, mode="bilinear"):
    o = self.dense(self.merge(merged))
    x = F.interpolate(self.project(o), size=h_prev.shape[-2:], mode=mode)
    return o, self.gru(x, h_prev)


@_unit
def f_concat_order(self, o_prev, h_prev):
    return _rest(self, torch.cat([self.down(h_prev), o_prev], dim=1), h_prev)


@_unit
def f_pool_by_two(self, o_prev, h_prev):
    return _rest(self, torch.cat([o_prev, F.max_pool2d(h_prev, 2)], dim=1), h_prev)


@_unit
def f_bilinear_down(self, o_prev, h_prev):
    down = F.interpolate(h_prev, scale_factor=1 / self.factor, mode="bilinear")
    return _rest(self, torch.cat([o_prev, down], dim=1), h_prev)


@_unit
def f_avg_pool(self, o_prev, h_prev):
    return _rest(self, torch.cat([o_prev, F.avg_pool2d(h_prev, self.factor)], dim=1), h_prev)


@_unit
def f_swapped_outputs(self, o_prev, h_prev):
    o, h = _rest(self, torch.cat([o_prev, self.down(h_prev)], dim=1), h_prev)
    return h, o


@_unit
def f_no_upsampling(self, o_prev, h_prev):
    o = self.dense(self.merge(torch.cat([o_prev, self.down(h_prev)], dim=1)))
    return o, self.gru(self.project(o), h_prev)


@_unit
def f_nearest(self, o_prev, h_prev):
    return _rest(self, torch.cat([o_prev, self.down(h_prev)], dim=1), h_prev, mode="nearest")


@_unit
def f_project_after(self, o_prev, h_prev):
    o = self.dense(self.merge(torch.cat([o_prev, self.down(h_prev)], dim=1)))
    x = self.project(F.interpolate(o, size=h_prev.shape[-2:], mode="bilinear"))
    return o, self.gru(x, h_prev)


@_unit
def f_no_dense(self, o_prev, h_prev):
    o = self.merge(torch.cat([o_prev, self.down(h_prev)], dim=1))
    x = F.interpolate(self.project(o), size=h_prev.shape[-2:], mode="bilinear")
    return o, self.gru(x, h_prev)


@_unit
def f_returns_merge(self, o_prev, h_prev):
    merged = self.merge(torch.cat([o_prev, self.down(h_prev)], dim=1))
    o = self.dense(merged)
    x = F.interpolate(self.project(o), size=h_prev.shape[-2:], mode="bilinear")
    return merged, self.gru(x, h_prev)


@_unit
def f_detached_state(self, o_prev, h_prev):
    o = self.dense(self.merge(torch.cat([o_prev, self.down(h_prev)], dim=1)))
    x = F.interpolate(self.project(o), size=h_prev.shape[-2:], mode="bilinear")
    return o, self.gru(x, h_prev.detach())


@_unit
def f_align_corners(self, o_prev, h_prev):
    o = self.dense(self.merge(torch.cat([o_prev, self.down(h_prev)], dim=1)))
    x = F.interpolate(self.project(o), size=h_prev.shape[-2:], mode="bilinear", align_corners=True)
    return o, self.gru(x, h_prev)


@_unit
def f_no_projection(self, o_prev, h_prev):
    o = self.dense(self.merge(torch.cat([o_prev, self.down(h_prev)], dim=1)))
    return o, self.gru(F.interpolate(o, size=h_prev.shape[-2:], mode="bilinear"), h_prev)


@_unit
def f_gru_args(self, o_prev, h_prev):
    o = self.dense(self.merge(torch.cat([o_prev, self.down(h_prev)], dim=1)))
    x = F.interpolate(self.project(o), size=h_prev.shape[-2:], mode="bilinear")
    return o, self.gru(h_prev, x)


@_unit
def f_gates_returned(self, o_prev, h_prev):
    o = self.dense(self.merge(torch.cat([o_prev, self.down(h_prev)], dim=1)))
    x = F.interpolate(self.project(o), size=h_prev.shape[-2:], mode="bilinear")
    return o, self.gru(x, h_prev, return_gates=True)


@_unit
def f_scale_factor(self, o_prev, h_prev):
    merged = torch.cat((o_prev, F.max_pool2d(h_prev, kernel_size=self.factor)), 1)
    o = self.dense(self.merge(merged))
    x = F.interpolate(self.project(o), scale_factor=self.factor, mode="bilinear")
    return o, self.gru(x, h_prev)


@_unit
def f_step_by_step(self, o_prev, h_prev):
    small_h = self.down(h_prev)
    both = torch.cat([o_prev, small_h], 1)
    o_in = self.merge(both)
    o_out = self.dense(o_in)
    x_low = self.project(o_out)
    x_full = F.interpolate(x_low, size=(h_prev.shape[2], h_prev.shape[3]), mode="bilinear")
    h_new = self.gru(x_full, h_prev)
    return o_out, h_new


WRONG = {
    "dense_block": [
        ("reversed concatenation", d_reversed, "concatenation order"),
        ("a chain, not dense", d_chain, "in_features + (l - 1) * growth_rate"),
        ("no final BatchNorm and ReLU", d_no_final, "final BatchNorm and ReLU are missing"),
        ("no final BatchNorm", d_no_norm, "final BatchNorm is missing"),
        ("no final ReLU", d_no_relu, "final ReLU is missing"),
        ("transition reads the last layer only", d_last_only, "transition reads"),
        ("hard-wired 3 layers", d_three_layers, "every layer in self.layers"),
        ("features detached", d_detached, "no gradient flows"),
        ("layers under no_grad", d_no_grad, "no gradient flows"),
        ("features summed", d_sum, "torch.cat"),
        ("concatenated along the batch", d_batch_dim, "dim=1"),
        ("layers read the input only", d_input_only, "in_features + (l - 1) * growth_rate"),
        ("block input left out", d_without_input, "transition reads"),
        ("extra ReLU", d_extra_relu, "ReLU before the transition"),
    ],
    "frdu": [
        ("concatenation order", f_concat_order, "concatenation order"),
        ("state pooled by 2", f_pool_by_two, "instead of self.factor"),
        ("bilinear down-sampling", f_bilinear_down, "bilinear interpolation"),
        ("average pooling", f_avg_pool, "average pooling"),
        ("outputs swapped", f_swapped_outputs, "outputs are swapped"),
        ("no up-sampling", f_no_upsampling, "up-sampled to h_prev's full resolution"),
        ("nearest up-sampling", f_nearest, "'nearest'"),
        ("projection after up-sampling", f_project_after, "before up-sampling"),
        ("no dense block", f_no_dense, "dense block"),
        ("returns the merged stream", f_returns_merge, "dense block's output"),
        ("state detached", f_detached_state, "gradient reaching h_prev"),
        ("align_corners=True", f_align_corners, "align_corners"),
        ("no projection", f_no_projection, "self.project"),
        ("ConvGRU arguments swapped", f_gru_args, "arguments are swapped"),
        ("GRU gates returned too", f_gates_returned, "the h you return is a tuple"),
    ],
}

RIGHT = {
    "dense_block": [("growing tensor", d_growing), ("indexed layers, clamp", d_indexed)],
    "frdu": [("scale_factor and max_pool2d", f_scale_factor), ("step by step", f_step_by_step)],
}
