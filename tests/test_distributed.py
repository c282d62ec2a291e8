"""Data-parallel training under torchrun on the CPU (Gloo, 2 processes, the tiny network).

Each test launches ``torchrun`` on ``tests/_ddp_worker.py``. Subprocess timeouts are a safety net
against a hang, not an assertion on speed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import _ddp_worker as worker
import pytest
import torch

from gruunet_edu.data.sampler import StepBatchSampler
from gruunet_edu.training.batches import collate
from gruunet_edu.training.loop import train

WORKER = Path(__file__).with_name("_ddp_worker.py")
SAFETY_NET_S = 600  # a hang would otherwise stop the whole suite

pytestmark = pytest.mark.skipif(
    not (torch.distributed.is_available() and torch.distributed.is_gloo_available()),
    reason="torch.distributed with Gloo is not available",
)


def torchrun(mode: str, out: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRUUNET_DIST_TIMEOUT": "60"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", str(WORKER), mode, str(out)]
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=SAFETY_NET_S, check=False
    )


def test_each_process_gets_its_share_of_the_single_process_batches():
    one = list(StepBatchSampler(10, 4, seed=3, start=0, total=6, draws=True))
    shares = [
        list(StepBatchSampler(10, 4, seed=3, start=0, total=6, draws=True, rank=r, world_size=2))
        for r in (0, 1)
    ]
    assert [a + b for a, b in zip(*shares, strict=True)] == one
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        StepBatchSampler(10, 3, world_size=2)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    result = torchrun("equivalence", out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def test_two_processes_with_global_batch_2b_train_like_one_process_with_batch_2b(
    two_process_run,
):
    data = worker.items()
    single = worker.fresh_model()
    history = train(single, data, data[:3], worker.settings())
    stored = torch.load(two_process_run / "full.pt", weights_only=True)
    assert stored["history"]["step"] == history.step == [2, 4]
    assert stored["history"]["train_loss"] == pytest.approx(history.train_loss, rel=1e-5)
    # The weights are compared through the function they compute, with batch statistics:
    # Adam turns float noise in gradients that are zero in exact arithmetic (convolution biases
    # in front of a BatchNorm, which cancels them) into steps of about lr, so those biases (and
    # the running means that follow them) differ while the network does not.
    ddp = worker.fresh_model()
    ddp.load_state_dict(stored["weights"])
    images, _ = collate(data)
    single.train(), ddp.train()
    with torch.no_grad():
        torch.testing.assert_close(ddp(images), single(images), rtol=1e-4, atol=1e-4)
    head = [k for k in stored["weights"] if k.startswith("head")]
    assert head
    for key in head:
        torch.testing.assert_close(
            stored["weights"][key], single.state_dict()[key], atol=1e-5, rtol=1e-4
        )


def test_resume_under_two_processes_equals_the_uninterrupted_run(two_process_run):
    full = torch.load(two_process_run / "full.pt", weights_only=True)
    resumed = torch.load(two_process_run / "resumed.pt", weights_only=True)
    assert resumed["history"]["step"] == full["history"]["step"] == [2, 4]
    assert resumed["history"]["train_loss"] == pytest.approx(full["history"]["train_loss"])
    for key, value in full["weights"].items():
        torch.testing.assert_close(resumed["weights"][key], value, rtol=1e-6, atol=1e-7)


def test_a_failing_process_stops_the_job_with_its_error(tmp_path):
    result = torchrun("fail", tmp_path)
    assert result.returncode != 0
    assert "rank failed on purpose" in result.stdout + result.stderr
