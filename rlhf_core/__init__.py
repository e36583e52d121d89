"""rlhf_core — Direct Preference Optimization from paper to code, small enough for a CPU.

The fixed public API (the notebooks, the grader and the drill rely on these names):

* :func:`dpo_loss`, :func:`implicit_reward` — the loss and the reward it implies (``losses``)
* :func:`get_logps` — per-sequence log-probs from logits: the shift and the mask (``logps``)
* :class:`ToyPolicy`, :func:`run_toy_task` — the drill's categorical toy task (``toy``)
* :func:`optimal_policy` — the closed-form optimum of the KL-regularised objective (``objective``)

Everything else lives in its module: ``model`` (the tiny transformer), ``tokenizer``, ``task``
(the synthetic sentiment task and its ground-truth reward), ``data`` (preference pairs),
``train`` (SFT and DPO loops), ``evaluation``, ``diagnostics`` (with ``advice``, what to do about
each label), ``frontier`` (reward vs KL), ``metrics``, ``plots``, ``checks`` (one ``check_<exercise>``
per exercise and the drill's six sanity checks), ``exercises`` (the stubs), ``paths`` (the shipped
assets), ``hf`` (the export to ``transformers``) and ``trl_dpo`` (the same run with TRL's
``DPOTrainer``). Modules that pull in heavy dependencies (``datasets``, ``matplotlib``,
``transformers``, ``trl``) are imported only when used.
"""

from .logps import get_logps
from .losses import dpo_loss, implicit_reward
from .objective import optimal_policy
from .toy import ToyPolicy, run_toy_task

__version__ = "0.1.0"

__all__ = ["dpo_loss", "implicit_reward", "get_logps", "ToyPolicy", "run_toy_task", "optimal_policy", "__version__"]
