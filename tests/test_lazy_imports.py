"""The heavy libraries load only when used: lessons 01–10 never pay for transformers, TRL or accelerate."""

import subprocess
import sys

HEAVY = ("transformers", "trl", "accelerate", "tokenizers", "nbgrader", "selenium")


def test_importing_the_library_and_its_bridge_loads_no_heavy_package():
    code = (
        "import sys\n"
        "import rlhf_core, rlhf_core.checks, rlhf_core.train, rlhf_core.hf, rlhf_core.trl_dpo\n"
        f"print(','.join(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported at module level: {done.stdout.strip()}"
