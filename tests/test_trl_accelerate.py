"""TRL's DPOTrainer data-parallel over two CPU processes (accelerate, gloo): the first step equals one process's.

accelerate's ``--cpu`` flag starts several CPU processes only through MPI; without MPI, ``--multi_gpu``
with ``ACCELERATE_USE_CPU=1`` starts them through torchrun and accelerate sets them up as MULTI_CPU
with the gloo backend (``rlhf_core.trl_dpo`` asks for the CPU when no GPU is there).
"""

import json
import os
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("trl")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow

if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
    pytest.skip("this torch build has no gloo backend for CPU data parallelism", allow_module_level=True)

ACCELERATE = shutil.which("accelerate", path=os.path.dirname(sys.executable)) or shutil.which("accelerate")


def _first_step(tmp_path, launcher: list[str]) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "ACCELERATE_USE_CPU": "1",
           "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1"}
    out = tmp_path / "trl-output"
    cmd = [*launcher, "-m", "rlhf_core.trl_dpo", "first-step", "--pairs", "16", "--batch", "8", "--output-dir", str(out)]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(ACCELERATE is None, reason="the accelerate command is not installed")
def test_two_processes_take_the_same_first_step_as_one(tmp_path):
    one = _first_step(tmp_path, [sys.executable])
    two = _first_step(tmp_path, [ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                                 "--mixed_precision", "no", "--dynamo_backend", "no"])
    assert (one["processes"], two["processes"]) == (1, 2)
    assert abs(one["loss"] - 0.6931) > 1e-3  # the policy differs from the reference: the loss depends on the batch
    assert two["loss"] == pytest.approx(one["loss"], abs=1e-6)
    for name in ("logps/chosen", "logps/rejected", "rewards/margins", "grad_norm"):
        assert two[name] == pytest.approx(one[name], rel=1e-5, abs=1e-6), name
