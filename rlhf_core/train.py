"""SFT and DPO training loops for the tiny transformer.

SFT (the reference policy) maximises the likelihood of corpus responses given their prompts: the
loss is the mean negative log-prob per *response* token (prompt tokens are context, not targets).

DPO trains a copy of the SFT model against a frozen reference (the SFT model itself, in eval mode,
no parameter requiring grad). The reference's log-probs of every training pair are computed once
before training and cached — it never changes, so recomputing them each step would be wasted work
(``bench/dpo_step.py`` measures the saving). Each update is one :func:`dpo_step` — the function
lesson 08's exercise is judged against — which stacks chosen and rejected into one ``(2B, T)`` batch
for a single policy forward pass; :func:`train_dpo` adds around it the learning-rate schedule and,
through ``dpo_step``'s keyword arguments, the other losses, gradient clipping and accumulation. It logs
the conventional metrics (:func:`rlhf_core.metrics.dpo_metrics`), plus held-out sampled reward, KL and
grammaticality every ``eval_every`` steps (:mod:`rlhf_core.evaluation`). Preferred-FT, the paper's
simplest baseline, closes the file: SFT on the chosen responses only.

The four log-probs of a pair are named as in :func:`rlhf_core.losses.dpo_loss`: ``logp_pol_chosen``,
``logp_pol_rejected`` (the policy's, from :func:`rlhf_core.logps.concatenated_logps`), ``logp_ref_chosen``,
``logp_ref_rejected`` (the frozen reference's, computed once by :func:`reference_logps`).
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from tqdm.auto import tqdm

from . import losses, task
from .data import collate_pairs, collate_sft
from .evaluation import evaluate_policy, heldout_pair_metrics
from .logps import concatenated_logps, get_token_logps
from .metrics import MetricsHistory, dpo_metrics
from .model import ModelConfig, TinyLM
from .tokenizer import WordTokenizer
from .toy import frozen_copy

__all__ = [
    "SFTConfig",
    "DPOConfig",
    "sft_loss",
    "sft_step",
    "train_sft",
    "reference_logps",
    "dpo_step",
    "chosen_nll",
    "LOSS_TYPES",
    "train_dpo",
    "dpo_optimizer",
    "make_reference",
    "lr_at",
    "train_preferred_ft",
    "SHIPPED_THREADS",
    "torch_threads",
]

#: The torch threads the shipped runs were made on (the SFT checkpoint, ``configs/sft.json``; the studies'
#: scripts): a run repeats bit for bit only on the machine that made it *and* on as many threads.
SHIPPED_THREADS = 2


def lr_at(step: int, total: int, peak: float, warmup: int, floor: float = 0.0) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to ``floor`` at ``total``."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * progress))


def _set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def _device_of(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def _to_device(batch: dict, device: torch.device) -> dict:
    return {k: v.to(device) for k, v in batch.items()}


def _next_indices(order: list[int], rng: random.Random, n_rows: int, batch_size: int) -> list[int]:
    """The next ``batch_size`` row indices: pops from ``order``, refilled with a fresh shuffle of all
    ``n_rows`` rows whenever fewer than a batch remain (each epoch's order follows ``rng``)."""
    if len(order) < batch_size:
        fresh = list(range(n_rows))
        rng.shuffle(fresh)
        order.extend(fresh)
    return [order.pop() for _ in range(batch_size)]


# ============================================================================================
# SFT


@dataclass
class SFTConfig:
    """Everything that determines the SFT checkpoint (kept in ``configs/sft.json``)."""

    seed: int = 0
    corpus_size: int = 20000
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 50
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0
    eval_every: int = 250
    num_threads: int = SHIPPED_THREADS
    model: dict = field(default_factory=lambda: {"d_model": 128, "n_layers": 2, "n_heads": 4, "d_ff": 352, "max_seq_len": 64})

    @classmethod
    def from_dict(cls, d: dict) -> SFTConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown SFT config keys {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def sft_loss(model: TinyLM, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean negative log-prob per response token of a :func:`~rlhf_core.data.collate_sft` batch (0-dim)."""
    logits = model(batch["input_ids"], batch["attention_mask"])  # (B, T, V)
    token_logps = get_token_logps(logits, batch["input_ids"])  # (B, T-1): token t+1 given ≤ t
    mask = batch["response_mask"][:, 1:].to(token_logps.dtype)  # (B, T-1): shifted with the labels
    return -(token_logps * mask).sum() / mask.sum().clamp(min=1)


def sft_step(model: TinyLM, batch: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer) -> float:
    """One SFT update: zero the gradients, the loss on response tokens, backward, step. Returns the loss."""
    optimizer.zero_grad()
    loss = sft_loss(model, batch)
    loss.backward()
    optimizer.step()
    return loss.item()


def _clipped_sft_update(model: TinyLM, batch: dict[str, torch.Tensor], optimizer: torch.optim.Optimizer,
                        max_grad_norm: float) -> float:
    """:func:`sft_step` in train mode, with the global gradient norm clipped before the step. Returns the loss."""
    model.train()
    optimizer.zero_grad()
    loss = sft_loss(model, batch)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item()


def train_sft(config: SFTConfig | None = None, corpus: Sequence[dict] | None = None, progress: bool = True,
              device: str | torch.device = "cpu", stop_after: int | None = None) -> tuple[TinyLM, WordTokenizer, MetricsHistory]:
    """Train the SFT model from scratch on the task corpus; returns ``(model, tokenizer, history)``.

    Deterministic for a given config on a given machine and thread count (``num_threads``: torch uses that many
    threads while it trains, and the caller's count again afterwards; 0 keeps the caller's).
    ``history`` holds ``loss`` per step and ``eval/loss`` (on 512 held-out reviews) every ``eval_every``.
    ``stop_after`` ends the run early *without* changing the learning-rate schedule, so the first
    steps of a full run can be reproduced cheaply.
    """
    config = config or SFTConfig()
    with torch_threads(config.num_threads):
        return _train_sft(config, corpus, progress, device, stop_after)


@contextlib.contextmanager
def torch_threads(n: int):
    """Torch on ``n`` threads inside the block (0: unchanged), the caller's count restored after it."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_sft(config: SFTConfig, corpus, progress: bool, device, stop_after: int | None):
    torch.manual_seed(config.seed)
    tokenizer = WordTokenizer.for_task()
    corpus = list(corpus) if corpus is not None else task.make_corpus(config.corpus_size, seed=config.seed)
    heldout = task.make_corpus(512, seed=config.seed + 10_000, prompts=task.HELDOUT_PROMPTS)
    model = TinyLM(ModelConfig(vocab_size=tokenizer.vocab_size, **config.model)).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=(0.9, 0.95))
    rng = random.Random(config.seed)
    order: list[int] = []
    history = MetricsHistory()
    heldout_batch = _to_device(collate_sft(heldout, tokenizer), device)
    bar = tqdm(range(config.steps if stop_after is None else min(stop_after, config.steps)), desc="SFT", disable=not progress)
    for step in bar:
        rows = [corpus[i] for i in _next_indices(order, rng, len(corpus), config.batch_size)]
        batch = _to_device(collate_sft(rows, tokenizer), device)
        _set_lr(optimizer, lr_at(step, config.steps, config.lr, config.warmup_steps, config.min_lr))
        loss = _clipped_sft_update(model, batch, optimizer, config.max_grad_norm)
        history.log(step, loss=loss)
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            model.eval()
            with torch.no_grad():
                eval_loss = sft_loss(model, heldout_batch).item()
            history.log(step, **{"eval/loss": eval_loss})
            bar.set_postfix(loss=f"{loss:.3f}", eval_loss=f"{eval_loss:.3f}")
    return model.eval(), tokenizer, history


# ============================================================================================
# DPO


@dataclass
class DPOConfig:
    """A DPO run. ``loss_type``: ``"sigmoid"`` (DPO), ``"ipo"``, ``"cdpo"`` (with ``label_smoothing``),
    or ``"hinge"`` (the margin cap: a pair stops pulling once its unscaled margin reaches 1/β).

    ``average_logps=True`` trains on length-averaged log-probs (the length-normalised variant);
    the default sums, as the paper does. The effective batch is ``batch_size × grad_accum_steps``.
    ``rpo_alpha`` > 0 adds ``rpo_alpha ×`` the mean per-token negative log-likelihood of the chosen
    responses to the loss (the NLL-regularised DPO of RPO, Pang et al. 2024, arXiv:2404.19733); 0, the
    default, is plain DPO. TRL 1.16 has no ``rpo_alpha``: there it is ``loss_type=["sigmoid", "sft"]`` with
    ``loss_weights=[1.0, α]``, whose NLL averages over all chosen tokens of the batch (here: per response, then
    over the batch).
    """

    beta: float = 0.3
    loss_type: str = "sigmoid"
    label_smoothing: float = 0.0
    average_logps: bool = False
    batch_size: int = 32
    grad_accum_steps: int = 1
    steps: int = 200
    lr: float = 3e-4
    warmup_steps: int = 10
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eval_every: int = 50
    eval_samples_per_prompt: int = 8
    seed: int = 0
    rpo_alpha: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


def make_reference(model: TinyLM) -> TinyLM:
    """A frozen copy for the reference: every parameter ``requires_grad=False``, eval mode."""
    return frozen_copy(model)


@torch.no_grad()
def reference_logps(reference: TinyLM, pairs: Sequence[dict], tokenizer: WordTokenizer, batch_size: int = 256,
                    average: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference's chosen and rejected log-probs for every pair, computed once: ``(N,)``, ``(N,)``."""
    was_training = reference.training
    reference.eval()
    device = _device_of(reference)
    chosen, rejected = [], []
    for start in range(0, len(pairs), batch_size):
        batch = _to_device(collate_pairs(pairs[start:start + batch_size], tokenizer), device)
        c, r = concatenated_logps(reference, batch, average)
        chosen.append(c.cpu())
        rejected.append(r.cpu())
    reference.train(was_training)
    return torch.cat(chosen), torch.cat(rejected)


LOSS_TYPES = ("sigmoid", "ipo", "cdpo", "hinge")


def _preference_losses(loss_type: str, logp_pol_chosen: torch.Tensor, logp_pol_rejected: torch.Tensor,
                       logp_ref_chosen: torch.Tensor, logp_ref_rejected: torch.Tensor, beta: float,
                       label_smoothing: float = 0.0) -> torch.Tensor:
    """Per-pair losses ``(B,)`` of ``loss_type``: ``"sigmoid"`` (DPO), ``"ipo"``, ``"cdpo"`` or ``"hinge"``."""
    four = (logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected)
    if loss_type == "sigmoid":
        return losses.dpo_losses(*four, beta)
    if loss_type == "ipo":
        return losses.ipo_losses(*four, beta)
    if loss_type == "cdpo":
        return losses.conservative_dpo_losses(*four, beta, label_smoothing)
    if loss_type == "hinge":
        return losses.hinge_losses(*four, beta)
    raise ValueError(f"unknown loss_type {loss_type!r}: use one of {', '.join(map(repr, LOSS_TYPES))}")


def chosen_nll(logp_pol_chosen: torch.Tensor, batch: dict[str, torch.Tensor], average_logps: bool = False) -> torch.Tensor:
    """Mean over the batch of the chosen responses' per-token negative log-likelihood (0-dim): RPO's NLL term.

    ``logp_pol_chosen`` ``(B,)`` are the policy's summed log-probs (or, with ``average_logps``, already
    the per-token means); the token counts come from ``chosen_response_mask``, shifted as in
    :func:`~rlhf_core.logps.get_logps` (EOS counted, BOS and the prompt not).
    """
    if average_logps:
        return -logp_pol_chosen.mean()
    n_tokens = batch["chosen_response_mask"][:, 1:].sum(-1).clamp(min=1).to(logp_pol_chosen.dtype)  # (B,)
    return -(logp_pol_chosen / n_tokens).mean()


def _micro_batches(batch: dict[str, torch.Tensor], n: int) -> list[tuple[slice, dict[str, torch.Tensor]]]:
    """``n`` consecutive slices of a pair batch, each trimmed to its own longest sequence (as if collated alone)."""
    size = batch["chosen_input_ids"].shape[0]
    if n == 1:
        return [(slice(0, size), batch)]
    if not 1 <= n <= size:
        raise ValueError(f"cannot split a batch of {size} pairs into {n} micro-batches")
    bounds = [round(i * size / n) for i in range(n + 1)]
    parts = []
    for lo, hi in zip(bounds, bounds[1:]):
        part = {k: v[lo:hi] for k, v in batch.items()}
        length = int(torch.cat([part["chosen_attention_mask"], part["rejected_attention_mask"]]).sum(1).max())
        parts.append((slice(lo, hi), {k: v[:, :length] for k, v in part.items()}))
    return parts


def dpo_step(policy: TinyLM, batch: dict[str, torch.Tensor], logp_ref_chosen: torch.Tensor,
             logp_ref_rejected: torch.Tensor, optimizer: torch.optim.Optimizer, beta: float = 0.1, *,
             loss_type: str = "sigmoid", label_smoothing: float = 0.0, average_logps: bool = False,
             max_grad_norm: float | None = None, micro_batches: int = 1, rpo_alpha: float = 0.0) -> dict[str, float]:
    """One DPO update on a :func:`~rlhf_core.data.collate_pairs` batch, with cached reference log-probs.

    Policy log-probs (summed, one forward over chosen+rejected: :func:`concatenated_logps`),
    ``dpo_loss`` against the cached reference log-probs ``logp_ref_chosen``, ``logp_ref_rejected``
    (``(B,)`` each), zero_grad / backward / step. Returns ``{"loss": …}`` plus :func:`dpo_metrics`,
    computed from the log-probs the gradient came from. This is the function lesson 08's exercise is
    judged against, and the step :func:`train_dpo` runs.

    The keyword-only extras are what :func:`train_dpo` adds; their defaults leave the step above
    unchanged. ``loss_type`` ``"ipo"`` or ``"cdpo"`` (with ``label_smoothing``) replaces the sigmoid
    loss; ``average_logps`` length-normalises the policy's log-probs (pass reference log-probs made
    the same way); ``max_grad_norm`` clips the global gradient norm before the step;
    ``micro_batches`` > 1 accumulates the gradient over that many consecutive slices of the batch
    (each backward of ``loss / micro_batches``), one optimizer step in all — the ``"loss"`` is then
    the mean of the slices' losses. ``rpo_alpha`` > 0 adds that many times :func:`chosen_nll` to each
    slice's loss (RPO); the step then also returns ``"nll/chosen"``, the NLL term before weighting.
    """
    optimizer.zero_grad()
    chosen, rejected, loss_values, nll_values = [], [], [], []
    for rows, part in _micro_batches(batch, micro_batches):
        logp_pol_chosen, logp_pol_rejected = concatenated_logps(policy, part, average_logps)  # (b,), (b,)
        loss = _preference_losses(loss_type, logp_pol_chosen, logp_pol_rejected, logp_ref_chosen[rows],
                                  logp_ref_rejected[rows], beta, label_smoothing).mean()
        if rpo_alpha:
            nll = chosen_nll(logp_pol_chosen, part, average_logps)
            loss = loss + rpo_alpha * nll
            nll_values.append(nll.detach())
        (loss / micro_batches if micro_batches > 1 else loss).backward()
        chosen.append(logp_pol_chosen.detach())
        rejected.append(logp_pol_rejected.detach())
        loss_values.append(loss.detach())
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
    optimizer.step()
    mean_loss = loss_values[0] if len(loss_values) == 1 else torch.stack(loss_values).mean()
    out = {"loss": mean_loss.item(),
           **dpo_metrics(torch.cat(chosen), torch.cat(rejected), logp_ref_chosen, logp_ref_rejected, beta)}
    if nll_values:
        out["nll/chosen"] = torch.stack(nll_values).mean().item()
    return out


def dpo_optimizer(policy: TinyLM, config: DPOConfig) -> torch.optim.Optimizer:
    """The optimizer :func:`train_dpo` builds when none is given: AdamW (torch's defaults: betas
    (0.9, 0.999), eps 1e-8) over the policy's trainable parameters, at ``config.lr`` and
    ``config.weight_decay``. Build it yourself to watch it (:class:`~rlhf_core.metrics.UpdateSizeMonitor`) and pass it in."""
    return torch.optim.AdamW([p for p in policy.parameters() if p.requires_grad], lr=config.lr,
                             weight_decay=config.weight_decay)


def train_dpo(policy: TinyLM, reference: TinyLM, tokenizer: WordTokenizer, train_pairs: Sequence[dict],
              config: DPOConfig | None = None, eval_pairs: Sequence[dict] | None = None,
              eval_prompts: Sequence[str] | None = task.HELDOUT_PROMPTS, progress: bool = True,
              on_log: Callable[[int, dict], None] | None = None,
              optimizer: torch.optim.Optimizer | None = None) -> MetricsHistory:
    """Train ``policy`` in place with DPO against the frozen ``reference``; returns the metrics history.

    ``train_pairs``/``eval_pairs`` are rows ``{prompt, chosen, rejected}`` (a list or a Dataset).
    The reference's log-probs are computed once up front; each update is one :func:`dpo_step` on
    ``batch_size × grad_accum_steps`` pairs (``micro_batches=grad_accum_steps``), with the config's loss,
    clipping at ``max_grad_norm``, and the learning rate set before it from :func:`lr_at` (linear
    warm-up, cosine decay to 0). Every ``eval_every`` steps (and at steps
    0 and the last) it logs ``eval/margin`` and ``eval/accuracy`` on ``eval_pairs`` and the sampled
    ``eval/reward``, ``eval/reward_std``, ``eval/kl``, ``eval/grammatical`` on ``eval_prompts``.
    ``optimizer`` replaces the default AdamW (:func:`dpo_optimizer`; its learning rate still follows the
    schedule). ``config.rpo_alpha`` > 0 adds RPO's NLL term on the chosen responses (see :class:`DPOConfig`).
    """
    config = config or DPOConfig()
    for p in reference.parameters():
        if p.requires_grad:
            raise ValueError("the reference has parameters that require grad: pass make_reference(model), a frozen copy")
    train_pairs = [dict(row) for row in train_pairs]
    eval_pairs = [dict(row) for row in eval_pairs] if eval_pairs is not None else None
    if len(train_pairs) < config.batch_size:
        raise ValueError(f"{len(train_pairs)} training pairs is fewer than one batch of {config.batch_size}")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    device = _device_of(policy)

    if config.loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown loss_type {config.loss_type!r}: use one of {', '.join(map(repr, LOSS_TYPES))}")
    ref_chosen, ref_rejected = reference_logps(reference, train_pairs, tokenizer, average=config.average_logps)  # cached once
    if eval_pairs:
        eval_ref_chosen, eval_ref_rejected = reference_logps(reference, eval_pairs, tokenizer, average=config.average_logps)

    if optimizer is None:
        optimizer = dpo_optimizer(policy, config)
    history = MetricsHistory()

    def evaluate(step: int) -> None:
        row: dict[str, float] = {}
        if eval_pairs:
            row.update(heldout_pair_metrics(policy, eval_pairs, eval_ref_chosen, eval_ref_rejected, tokenizer,
                                            config.average_logps))
        if eval_prompts:
            row.update(evaluate_policy(policy, reference, tokenizer, eval_prompts,
                                       config.eval_samples_per_prompt, seed=config.seed + 1))
        if row:
            history.log(step, **row)
            if on_log:
                on_log(step, row)

    evaluate(0)
    order: list[int] = []
    bar = tqdm(range(1, config.steps + 1), desc=f"DPO β={config.beta}", disable=not progress)
    for step in bar:
        policy.train()
        _set_lr(optimizer, lr_at(step - 1, config.steps, config.lr, config.warmup_steps))
        idx = [i for _ in range(config.grad_accum_steps)  # one batch_size slice per micro-batch, as they are drawn
               for i in _next_indices(order, rng, len(train_pairs), config.batch_size)]
        batch = _to_device(collate_pairs([train_pairs[i] for i in idx], tokenizer), device)
        metrics = dpo_step(policy, batch, ref_chosen[idx].to(device), ref_rejected[idx].to(device), optimizer,
                           config.beta, loss_type=config.loss_type, label_smoothing=config.label_smoothing,
                           average_logps=config.average_logps, max_grad_norm=config.max_grad_norm,
                           micro_batches=config.grad_accum_steps, rpo_alpha=config.rpo_alpha)
        history.log(step, **metrics)
        if on_log:
            on_log(step, metrics)
        bar.set_postfix(loss=f"{metrics['loss']:.3f}", acc=f"{metrics['rewards/accuracies']:.2f}",
                        margin=f"{metrics['logratio/margin']:.1f}")
        if step % config.eval_every == 0 or step == config.steps:
            evaluate(step)
    policy.eval()
    return history


# ============================================================================================
# Preferred-FT: the paper's simplest baseline


def train_preferred_ft(policy: TinyLM, reference: TinyLM, tokenizer: WordTokenizer, pairs: Sequence[dict],
                       steps: int = 200, batch_size: int = 32, lr: float = 3e-4, warmup_steps: int = 10,
                       max_grad_norm: float = 1.0, eval_every: int = 50, eval_samples_per_prompt: int = 8,
                       eval_prompts: Sequence[str] | None = task.HELDOUT_PROMPTS, seed: int = 0,
                       progress: bool = True) -> MetricsHistory:
    """Supervised fine-tuning on the *chosen* responses only (the paper's "Preferred-FT" baseline).

    It sees the same pairs as DPO but ignores the rejected responses. Trains ``policy`` in place and
    logs ``loss`` per step and the sampled ``eval/reward``, ``eval/kl`` (to ``reference``) and
    ``eval/grammatical`` at step 0, every ``eval_every`` steps and at the end.
    """
    rows = [{"prompt": p["prompt"], "response": p["chosen"]} for p in pairs]
    torch.manual_seed(seed)
    rng = random.Random(seed)
    device = _device_of(policy)
    optimizer = torch.optim.AdamW(policy.parameters(), lr=lr, weight_decay=0.0)
    history = MetricsHistory()

    def evaluate(step: int) -> None:
        if eval_prompts:
            history.log(step, **evaluate_policy(policy, reference, tokenizer, eval_prompts, eval_samples_per_prompt, seed=seed + 1))

    evaluate(0)
    order: list[int] = []
    for step in tqdm(range(1, steps + 1), desc="Preferred-FT", disable=not progress):
        batch = _to_device(collate_sft([rows[i] for i in _next_indices(order, rng, len(rows), batch_size)], tokenizer), device)
        _set_lr(optimizer, lr_at(step - 1, steps, lr, warmup_steps))
        history.log(step, loss=_clipped_sft_update(policy, batch, optimizer, max_grad_norm))
        if step % eval_every == 0 or step == steps:
            evaluate(step)
    policy.eval()
    return history
