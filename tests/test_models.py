"""Behaviour of the models: ConvGRU maths, dense block, GRUU-Net, U-Net baseline, input checks."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from gruunet_edu.models import (
    ARCHS,
    FRDU,
    PRESETS,
    ConvGRUCell,
    DenseBlock,
    DenseLayer,
    FRDUStep,
    FusedConvGRUCell,
    GRUUNet,
    GRUUNetConfig,
    UNet,
    build_model,
    copy_convgru_weights,
    count_parameters,
    matching_base_width,
    unet_for,
)
from gruunet_edu.models import frdu as frdu_module


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The tensors here are tiny: one thread avoids waiting on a busy CPU's other cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _tiny(**overrides) -> GRUUNetConfig:
    return GRUUNetConfig.preset("tiny", **overrides)


def _gates_and_state(cell: nn.Module, x: torch.Tensor, h: torch.Tensor):
    with torch.no_grad():
        return cell(x, h, return_gates=True)


# --------------------------------------------------------------------------- ConvGRU
@pytest.mark.parametrize("direction", ["readable->fused", "fused->readable"])
def test_fused_and_readable_convgru_agree_after_copy(direction: str) -> None:
    torch.manual_seed(0)
    readable, fused = ConvGRUCell(5, 4), FusedConvGRUCell(5, 4)
    src, dst = (readable, fused) if direction == "readable->fused" else (fused, readable)
    x, h = torch.randn(2, 5, 7, 6), torch.randn(2, 4, 7, 6)
    before = _gates_and_state(dst, x, h)[0]
    assert not torch.allclose(before, _gates_and_state(src, x, h)[0], atol=1e-3)
    assert copy_convgru_weights(src, dst) is dst
    for a, b in zip(_gates_and_state(src, x, h), _gates_and_state(dst, x, h), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    # the copy is a copy: changing the source afterwards leaves the destination alone
    with torch.no_grad():
        for p in src.parameters():
            p.add_(1.0)
    assert not torch.allclose(_gates_and_state(src, x, h)[0], _gates_and_state(dst, x, h)[0])


def test_copy_convgru_weights_rejects_cells_of_other_sizes() -> None:
    with pytest.raises(ValueError, match="differ in size"):
        copy_convgru_weights(ConvGRUCell(5, 4), FusedConvGRUCell(5, 3))


def test_convgru_returns_state_of_state_shape_and_gates_in_unit_interval() -> None:
    torch.manual_seed(1)
    cell = FusedConvGRUCell(3, 4)
    x, h = torch.randn(2, 3, 5, 5), torch.randn(2, 4, 5, 5)
    assert cell(x, h).shape == (2, 4, 5, 5)
    h_new, z, r = _gates_and_state(cell, x, h)
    for t in (h_new, z, r):
        assert t.shape == (2, 4, 5, 5)
    assert 0 < z.min() and z.max() < 1 and 0 < r.min() and r.max() < 1


def _force_update_gate(cell: nn.Module, value: float) -> None:
    """Zero the update gate's weights and set its bias so that z = sigmoid(value) everywhere."""
    with torch.no_grad():
        if isinstance(cell, ConvGRUCell):
            for conv in (cell.conv_xz, cell.conv_hz):
                conv.weight.zero_()
                conv.bias.zero_()
            cell.conv_xz.bias.fill_(value)
        else:
            c = cell.channels
            cell.conv_x.weight[:c].zero_()
            cell.conv_x.bias[:c].fill_(value)
            cell.conv_h.weight[:c].zero_()
            cell.conv_h.bias[:c].zero_()


def _candidate(cell: nn.Module, x: torch.Tensor, h: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Equation (3) computed from the cell's weights, independently of its forward."""
    if isinstance(cell, ConvGRUCell):
        pre = cell.conv_xh(x) + cell.conv_hh(r * h)
    else:
        pre = cell.conv_x(x)[:, 2 * cell.channels :] + cell.conv_hh(r * h)
    return F.leaky_relu(pre, cell.slope)


@pytest.mark.parametrize("cls", [ConvGRUCell, FusedConvGRUCell])
def test_update_gate_zero_keeps_state_and_one_takes_candidate(cls: type) -> None:
    torch.manual_seed(2)
    cell = cls(3, 4)
    x, h = torch.randn(1, 3, 6, 6), torch.randn(1, 4, 6, 6)

    _force_update_gate(cell, -50.0)  # z = 0: "keep the old state"
    h_new, z, _ = _gates_and_state(cell, x, h)
    assert z.max() < 1e-6
    torch.testing.assert_close(h_new, h)

    _force_update_gate(cell, 50.0)  # z = 1: "replace the state by the candidate"
    h_new, z, r = _gates_and_state(cell, x, h)
    assert z.min() > 1 - 1e-6
    with torch.no_grad():
        candidate = _candidate(cell, x, h, r)
    torch.testing.assert_close(h_new, candidate)
    assert not torch.allclose(h_new, h)


# --------------------------------------------------------------------------- dense block
def test_dense_layer_is_bn_relu_1x1_bn_relu_3x3_without_bias() -> None:
    layer = DenseLayer(in_features=6, growth_rate=4, bn_size=2)
    assert isinstance(layer.norm1, nn.BatchNorm2d) and layer.norm1.num_features == 6
    assert layer.conv1.kernel_size == (1, 1) and layer.conv1.out_channels == 8
    assert isinstance(layer.norm2, nn.BatchNorm2d) and layer.norm2.num_features == 8
    assert layer.conv2.kernel_size == (3, 3) and layer.conv2.out_channels == 4
    assert layer.conv1.bias is None and layer.conv2.bias is None

    calls: list[str] = []
    for name, module in layer.named_children():
        module.register_forward_hook(lambda m, i, o, name=name: calls.append(name))
    y = layer(torch.randn(2, 6, 5, 5))
    assert calls == ["norm1", "relu", "conv1", "norm2", "relu", "conv2"]
    assert y.shape == (2, 4, 5, 5)


def test_dense_block_concatenates_growth_and_maps_to_out_features() -> None:
    block = DenseBlock(in_features=8, out_features=12, num_layers=3, growth_rate=4, bn_size=2)
    assert [layer.norm1.num_features for layer in block.layers] == [8, 12, 16]
    assert block.transition[0].num_features == 8 + 3 * 4
    assert all(
        m.bias is None for m in block.modules() if isinstance(m, nn.Conv2d)
    )  # a BN follows every convolution
    y = block(torch.randn(2, 8, 5, 7))
    assert y.shape == (2, 12, 5, 7)
    assert y.min() >= 0  # ends with BN-ReLU


# --------------------------------------------------------------------------- GRUU-Net
def test_blog_preset_has_the_blog_parameter_count() -> None:
    model = GRUUNet(GRUUNetConfig.preset("blog", in_channels=3, num_classes=2))
    assert count_parameters(model) == 5_170_210


def test_count_parameters_counts_only_trainable() -> None:
    model = GRUUNet(_tiny())
    total = sum(p.numel() for p in model.parameters())
    assert count_parameters(model) == total
    model.head.weight.requires_grad_(False)
    assert count_parameters(model) == total - model.head.weight.numel()


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("arch", ARCHS)
def test_every_preset_gives_logits_of_input_size(preset: str, arch: str) -> None:
    config = GRUUNetConfig.preset(preset, in_channels=2, num_classes=3)
    model = build_model(config, arch=arch).eval()
    assert model.arch == arch
    m = config.size_multiple
    with torch.no_grad():
        logits = model(torch.randn(1, 2, m, m))
    assert logits.shape == (1, 3, m, m)
    assert torch.isfinite(logits).all()


def test_build_model_rejects_unknown_arch() -> None:
    with pytest.raises(ValueError, match="unknown arch 'resnet'"):
        build_model(_tiny(), arch="resnet")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_gradients_reach_every_parameter(preset: str, arch: str) -> None:
    torch.manual_seed(3)
    config = GRUUNetConfig.preset(preset, num_classes=3)
    model = build_model(config, arch=arch).train()
    m = config.size_multiple
    x, target = torch.rand(2, 1, m, m), torch.randint(0, 3, (2, m, m))
    F.cross_entropy(model(x), target).backward()
    params = dict(model.named_parameters())
    assert [n for n, p in params.items() if p.grad is None] == []
    assert all(torch.isfinite(p.grad).all() for p in params.values())
    # every weight learns; a bias right before a training-mode BatchNorm may get (almost) zero
    # gradient, as BN removes per-channel shifts (the blog's ConvNorm has such biases)
    assert [n for n, p in params.items() if p.ndim > 1 and not p.grad.any()] == []


@pytest.mark.parametrize("arch", ARCHS)
def test_same_seed_same_model_same_output(arch: str) -> None:
    x = torch.rand(1, 1, 16, 16)
    outputs = []
    for _ in range(2):
        torch.manual_seed(4)
        model = build_model(_tiny(), arch=arch).eval()
        with torch.no_grad():
            outputs.append(model(x))
    assert torch.equal(outputs[0], outputs[1])


def test_fused_gru_flag_changes_speed_not_maths() -> None:
    torch.manual_seed(5)
    fused = GRUUNet(_tiny(fused_gru=True)).eval()
    readable = GRUUNet(_tiny(fused_gru=False)).eval()
    shared = {k: v for k, v in fused.state_dict().items() if ".gru." not in k}
    readable.load_state_dict(shared, strict=False)
    for a, b in zip(fused.frdus, readable.frdus, strict=True):
        copy_convgru_weights(a.gru, b.gru)
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(fused(x), readable(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("size", [(16, 24), (13, 17)])
def test_return_states_gives_one_step_per_frdu(size: tuple[int, int]) -> None:
    config = _tiny(num_classes=3)
    model = GRUUNet(config).eval()
    height, width = size
    x = torch.rand(2, 1, height, width)
    with torch.no_grad():
        plain = model(x)
    logits, states = model(x, return_states=True)
    torch.testing.assert_close(logits, plain)
    assert len(states) == config.num_steps == len(model.frdus)
    for step, channels, factor in zip(states, config.widths, config.frdu_factors, strict=True):
        assert isinstance(step, FRDUStep)
        for t in (step.h, step.z, step.r):
            assert t.shape == (2, config.hidden_channels, height, width)
            assert not t.requires_grad
        assert step.o.shape == (2, channels, -(-height // factor), -(-width // factor))
    # the last state read out is the output (for padded inputs, away from the cropped border,
    # which the two 3x3 convolutions of the read-out saw padded)
    padded = height % 8 or width % 8
    border = 2 if padded else 0
    readout = model.readout(states[-1].h)[..., : height - border, : width - border]
    torch.testing.assert_close(readout, logits[..., : height - border, : width - border])


def test_without_return_states_nothing_is_captured_or_kept(monkeypatch) -> None:
    created: list[FRDUStep] = []

    class CountingStep(FRDUStep):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(frdu_module, "FRDUStep", CountingStep)
    model = GRUUNet(_tiny())
    gate_requests: list[bool] = []
    for frdu in model.frdus:
        assert isinstance(frdu, FRDU)
        original = frdu.gru.forward

        def spy(x, h, return_gates=False, original=original):
            gate_requests.append(return_gates)
            return original(x, h, return_gates)

        monkeypatch.setattr(frdu.gru, "forward", spy)
    out = model(torch.rand(2, 1, 16, 16))
    assert out.shape == (2, 3, 16, 16)
    assert created == [] and gate_requests == [False] * len(model.frdus)
    # no hooks, and no module holds on to a tensor of the forward pass
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks
        held = [k for k, v in vars(module).items() if isinstance(v, torch.Tensor)]
        assert held == [], f"{type(module).__name__} keeps {held}"
    model(torch.rand(2, 1, 16, 16), return_states=True)
    assert len(created) == len(model.frdus)


@pytest.mark.parametrize("arch", ARCHS)
def test_odd_sizes_are_reflect_padded_and_cropped_back(arch: str) -> None:
    torch.manual_seed(6)
    config = _tiny()
    model = build_model(config, arch=arch).eval()
    x = torch.rand(1, 1, 13, 21)
    padded = F.pad(x, (0, 3, 0, 3), mode="reflect")  # to 16 x 24, multiples of 8
    with torch.no_grad():
        logits = model(x)
        expected = model(padded)[..., :13, :21]
    assert logits.shape == (1, 3, 13, 21)
    torch.testing.assert_close(logits, expected)


@pytest.mark.parametrize("arch", ARCHS)
def test_too_small_input_says_which_size_is_needed(arch: str) -> None:
    model = build_model(_tiny(), arch=arch)  # size multiple 8: reflect-padding needs >= 5
    with pytest.raises(ValueError, match="height and width >= 5"):
        model(torch.rand(1, 1, 4, 9))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize(
    "bad, detail",
    [
        (torch.rand(1, 2, 16, 16), "with 1 channel"),
        (torch.rand(1, 16, 16), "x.unsqueeze(0)"),
        (torch.rand(16, 16), "x[None, None]"),
        (torch.zeros(1, 1, 16, 16, dtype=torch.uint8), "floating-point"),
        (np.zeros((1, 1, 16, 16), dtype=np.float32), "torch.Tensor"),
    ],
    ids=["channels", "3d", "2d", "integer", "numpy"],
)
def test_bad_inputs_raise_value_error_naming_expected_shape(arch, bad, detail) -> None:
    model = build_model(_tiny(in_channels=1), arch=arch)
    with pytest.raises(ValueError, match=re.escape("(B, 1, H, W)")) as info:
        model(bad)
    assert detail in str(info.value)


# --------------------------------------------------------------------------- U-Net baseline
@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("channels", [(1, 3), (3, 2)])
def test_unet_parameter_count_within_ten_percent(preset: str, channels: tuple[int, int]) -> None:
    config = GRUUNetConfig.preset(preset, in_channels=channels[0], num_classes=channels[1])
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        gruunet, unet = count_parameters(GRUUNet(config)), count_parameters(unet_for(config))
    assert abs(unet - gruunet) / gruunet <= 0.10


def test_unet_base_width_is_the_closest_match() -> None:
    config = GRUUNetConfig.preset("small")
    target = count_parameters(GRUUNet(config))
    base = matching_base_width(config)
    assert UNet(config).base_width == base == unet_for(config).base_width

    def error(width: int) -> int:
        return abs(count_parameters(UNet(config, base_width=width)) - target)

    assert error(base) <= error(base - 1) and error(base) <= error(base + 1)


def test_unet_follows_the_config_scales_and_doubles_widths() -> None:
    config = GRUUNetConfig.preset("small", in_channels=2, num_classes=4)
    model = UNet(config, base_width=5)
    assert model.widths == (5, 10, 20, 40)  # levels 0..S for S = 3 scales
    assert len(model.encoder) == config.num_scales + 1
    assert len(model.decoder) == config.num_scales
    assert model.head.out_channels == 4
    with pytest.raises(ValueError, match="base_width"):
        UNet(config, base_width=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_channels_last_model_computes_the_same_logits(arch: str) -> None:
    torch.manual_seed(7)
    model = build_model(_tiny(in_channels=3), arch=arch).eval()
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
        model = model.to(memory_format=torch.channels_last)
        logits = model(x)  # a plain (NCHW) input: the convolutions follow the weights' order
    assert logits.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(logits, expected, rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ building blocks' checks


@pytest.mark.parametrize("cls", [ConvGRUCell, FusedConvGRUCell])
@pytest.mark.parametrize(
    ("x_shape", "h_shape", "dtype", "expected"),
    [
        ((2, 4, 8, 8), (2, 3, 8, 8), torch.float32, r"x of shape \(B, 5, H, W\) with 5 channel"),
        ((2, 5, 8, 8), (2, 4, 8, 8), torch.float32, r"h of shape \(2, 3, 8, 8\) with 3 channel"),
        ((2, 5, 8, 8), (2, 3, 6, 8), torch.float32, r"same|height x width of x \(2, 5, 8, 8\)"),
        ((5, 8, 8), (2, 3, 8, 8), torch.float32, r"x of shape .* got 3 dimensions.*unsqueeze"),
        ((1, 5, 8, 8), (2, 3, 8, 8), torch.float32, r"batch size and height x width of x"),
        ((2, 5, 8, 8), (2, 3, 8, 8), torch.int64, r"floating-point dtype, got torch.int64"),
    ],
)
def test_convgru_cells_name_the_expected_shape_and_dtype(cls, x_shape, h_shape, dtype, expected):
    cell = cls(5, 3)
    x = torch.zeros(x_shape).to(dtype)
    h = torch.zeros(h_shape).to(dtype)
    with pytest.raises(ValueError, match=expected):
        cell(x, h)


@pytest.mark.parametrize("cls", [ConvGRUCell, FusedConvGRUCell])
def test_convgru_h_none_is_the_zero_initial_state(cls) -> None:
    torch.manual_seed(0)
    cell = cls(2, 3)
    x = torch.randn(2, 2, 6, 6)
    out = cell(x)
    assert out.shape == (2, 3, 6, 6)
    torch.testing.assert_close(out, cell(x, torch.zeros(2, 3, 6, 6)))


@pytest.mark.parametrize("cls", [ConvGRUCell, FusedConvGRUCell])
@pytest.mark.parametrize(("x_channels", "channels"), [(0, 3), (2, 0), (-1, 3)])
def test_convgru_refuses_empty_channel_counts(cls, x_channels, channels) -> None:
    with pytest.raises(ValueError, match=r"needs (x_)?channels >= 1"):
        cls(x_channels, channels)


def test_dense_block_checks_its_input() -> None:
    block = DenseBlock(in_features=8, out_features=12, num_layers=2, growth_rate=4)
    with pytest.raises(ValueError, match=r"DenseBlock expects x of shape \(B, 8, H, W\)"):
        block(torch.zeros(1, 7, 8, 8))
    with pytest.raises(ValueError, match="floating-point dtype, got torch.uint8"):
        block(torch.zeros(1, 8, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="in_features >= 1"):
        DenseBlock(0, 12, 2)


def test_frdu_checks_both_streams() -> None:
    frdu = FRDU(in_channels=6, channels=8, hidden_channels=4, factor=2, growth_rate=4)
    o, h = torch.zeros(2, 6, 4, 4), torch.zeros(2, 4, 8, 8)
    assert frdu(o, h)[1].shape == (2, 4, 8, 8)
    with pytest.raises(ValueError, match=r"h_prev of shape \(B, 4, H, W\) with 4 channel"):
        frdu(o, torch.zeros(2, 5, 8, 8))
    with pytest.raises(ValueError, match=r"o_prev of shape \(2, 6, 4, 4\).*1/2 of its height"):
        frdu(torch.zeros(2, 6, 8, 8), h)
    with pytest.raises(ValueError, match=r"o_prev of shape \(2, 6, 4, 4\) with 6 channel"):
        frdu(torch.zeros(2, 3, 4, 4), h)
    with pytest.raises(ValueError, match="factor >= 1"):
        FRDU(6, 8, 4, factor=0)


def test_network_refuses_nan_pixels_with_their_count() -> None:
    model = build_model(GRUUNetConfig.preset("tiny"))
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, :2, :3] = float("nan")
    with torch.no_grad(), pytest.raises(ValueError, match=r"6 NaN value\(s\)"):
        model(x)


def test_network_runs_on_meta_tensors_for_size_and_flop_counts() -> None:
    with torch.device("meta"):
        model = build_model(GRUUNetConfig.preset("tiny"))
        out = model(torch.empty(1, 1, 32, 32))
    assert out.is_meta and out.shape == (1, 3, 32, 32)


def test_count_flops_counts_on_the_meta_device_and_leaves_the_model_alone():
    from gruunet_edu.models import count_flops

    config = GRUUNetConfig.preset("tiny")
    model = build_model(config)
    with torch.device("meta"):
        on_meta = build_model(config)
    flops = count_flops(model, size=64)
    assert flops == count_flops(on_meta, size=64) > 0
    assert count_flops(on_meta, size=128) == 4 * flops  # convolutions: FLOPs scale with pixels
    assert next(model.parameters()).device.type == "cpu"
