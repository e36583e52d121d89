"""rlhf_core — Direct Preference Optimization from paper to code, small enough for a CPU.

The fixed public API (the lessons, the grader and the drill rely on these names):

* :func:`dpo_loss`, :func:`implicit_reward` — the loss and the reward it implies (``losses``)
* :func:`get_logps` — per-sequence log-probs from logits: the shift and the mask (``logps``)
* :class:`ToyPolicy`, :func:`run_toy_task` — the drill's categorical toy task (``toy``)
* :func:`optimal_policy` — the closed-form optimum of the KL-regularised objective (``objective``)

This folder holds the paper's parts, one module each, and what trains and evaluates them:

* the paper: ``objective`` (the KL-regularised objective, its closed form, Bradley–Terry), ``losses``
  (DPO and its successors), ``logps`` (sequence log-probs), ``toy`` (a categorical policy);
* the model and its task: ``model`` (the tiny transformer), ``tokenizer``, ``task`` (the synthetic
  sentiment task and its ground-truth reward), ``data`` (preference pairs, collation, files);
* training and evaluating: ``train`` (the SFT and DPO loops and steps, Preferred-FT), ``evaluation``
  (sampled reward and KL, the reward-vs-KL frontier), ``metrics`` (what a run logs, and reading it),
  ``diagnostics`` (what went wrong in a run) with ``fixes`` (how a diagnosis reads, what to do),
  ``plots``, ``recipes`` (the course's standard DPO run), ``checkpoint`` (saving and loading a model)
  and ``paths`` (the shipped assets);
* past the course: ``hf`` (the export to ``transformers``) and ``trl_dpo`` (the same run with TRL's
  ``DPOTrainer``).

Two subpackages: ``checks`` (one ``check_<exercise>`` per exercise, read from its record, and the drill's
six sanity checks) and ``course`` (the course machinery: the drill and its variants, the diagnosis
round, module-mode stubs, notebook helpers, the environment check, the studies and the SFT
checkpoint's script). Modules that pull in heavy dependencies (``datasets``, ``matplotlib``,
``transformers``, ``trl``) are imported only when used.
"""

from .logps import get_logps
from .losses import dpo_loss, implicit_reward
from .objective import optimal_policy
from .toy import ToyPolicy, run_toy_task

__version__ = "0.1.0"

__all__ = ["dpo_loss", "implicit_reward", "get_logps", "ToyPolicy", "run_toy_task", "optimal_policy", "__version__"]
