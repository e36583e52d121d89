"""A synthetic class for ``grader similarity``: independent answers and planted copies, per exercise.

For each exercise of lessons 02–06 with a short answer (``dpo_loss``, ``implicit_reward``, ``toy_dpo_step``,
``get_logps``, ``rms_norm``, ``swiglu``, ``apply_rope``, ``sft_step``), 20 answers written one by one as
independent students would write them — correct ones and the common mistakes, in different styles (names,
one-liners or several lines, ``torch.nn.functional`` or ``F``, comments, helper variables and functions,
the docstring kept or removed, extra imports). Each answer is ``Answer(expect, body, doc, imports)``:
``expect`` is ``"ok"`` or the id of the registered mistake it computes (tests check both).

Then **planted copies** (:func:`copies`): some of those answers disguised mechanically the ways a copier
does — local names renamed, independent adjacent statements swapped, comments, blank lines and dead code
added — each handed in by a student of its own. Every other pair of students is independent.

:func:`build_class` writes it as ``SUBMISSIONS/<student>/<NN_name>.ipynb`` (the released notebook with the
exercise cells replaced); ``bench/similarity_rates.py`` and ``tests/test_similarity.py`` measure on it.
Student ``sNN`` hands in answer NN of every exercise of the lesson; ``copyNN_…`` are the copies.
"""

from __future__ import annotations

import ast
import copy
import io
import json
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

from grader.course import NOTEBOOKS_DIR

L02, L03, L04, L05, L06 = ("02_bradley_terry_and_dpo_loss", "03_toy_policy", "04_sequence_logps",
                           "05_tiny_transformer", "06_task_tokenizer_sft")
LESSON_OF = {"dpo_loss": L02, "implicit_reward": L02, "toy_dpo_step": L03, "get_logps": L04,
             "rms_norm": L05, "swiglu": L05, "apply_rope": L05, "sft_step": L06}


@dataclass(frozen=True)
class Answer:
    expect: str          # "ok", or the registered mistake id it computes
    body: str            # the function's body, indented four spaces
    doc: bool = True     # the stub's docstring kept
    imports: str = ""    # lines the student added above the stub's own


A = Answer
T = "import torch\n"

ANSWERS: dict[str, list[Answer]] = {
    "dpo_loss": [
        A("ok", """\
    pi_logratios = logp_pol_chosen - logp_pol_rejected
    ref_logratios = logp_ref_chosen - logp_ref_rejected
    logits = pi_logratios - ref_logratios
    losses = -F.logsigmoid(beta * logits)
    return losses.mean()
"""),
        A("ok", """\
    return -F.logsigmoid(beta * ((logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected))).mean()
""", doc=False),
        A("ok", """\
    margin = (logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected)
    return -torch.nn.functional.logsigmoid(beta * margin).mean()
""", imports=T),
        A("ok", """\
    h = beta * (logp_pol_chosen - logp_pol_rejected - logp_ref_chosen + logp_ref_rejected)
    return F.softplus(-h).mean()   # softplus(-h) = -log sigmoid(h)
"""),
        A("ok", """\
    r_w = beta * (logp_pol_chosen - logp_ref_chosen)
    r_l = beta * (logp_pol_rejected - logp_ref_rejected)
    return -F.logsigmoid(r_w - r_l).mean()
""", doc=False),
        A("ok", """\
    # log-ratios of policy to reference, per response
    chosen = logp_pol_chosen - logp_ref_chosen
    rejected = logp_pol_rejected - logp_ref_rejected

    # Bradley-Terry: -log sigma(beta * (chosen - rejected)), in the stable form
    loss = -F.logsigmoid(beta * (chosen - rejected))
    return loss.mean()
"""),
        A("ok", """\
    diff = (logp_pol_chosen - logp_pol_rejected) - (logp_ref_chosen - logp_ref_rejected)
    return torch.mean(-F.logsigmoid(beta * diff))
""", imports=T),
        A("ok", """\
    z = beta * ((logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected))
    # -log sigmoid(z) = log(1 + exp(-z)), written so that it never overflows
    per_pair = torch.clamp(-z, min=0) + torch.log1p(torch.exp(-torch.abs(z)))
    return per_pair.mean()
""", imports=T),
        A("ok", """\
    a = logp_pol_chosen - logp_ref_chosen
    b = logp_pol_rejected - logp_ref_rejected
    l = -F.logsigmoid(beta * (a - b))
    return l.sum() / l.numel()
""", doc=False),
        A("ok", """\
    pol = torch.stack([logp_pol_chosen, logp_pol_rejected])   # (2, B)
    ref = torch.stack([logp_ref_chosen, logp_ref_rejected])   # (2, B)
    ratio = pol - ref
    margin = beta * (ratio[0] - ratio[1])
    return (-F.logsigmoid(margin)).mean()
""", imports=T),
        A("ok", """\
    def logratio(policy, reference):
        return policy - reference

    u = logratio(logp_pol_chosen, logp_ref_chosen) - logratio(logp_pol_rejected, logp_ref_rejected)
    return F.softplus(-beta * u).mean()
"""),
        A("ok", """\
    delta_w = logp_pol_chosen.sub(logp_ref_chosen)
    delta_l = logp_pol_rejected.sub(logp_ref_rejected)
    return F.logsigmoid((delta_w - delta_l).mul(beta)).neg().mean()
""", doc=False),
        A("ok", """\
    x = beta * ((logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected))
    return torch.logaddexp(torch.zeros_like(x), -x).mean()
""", imports=T),
        A("ok", """\
    chosen_rewards = beta * (logp_pol_chosen - logp_ref_chosen)
    rejected_rewards = beta * (logp_pol_rejected - logp_ref_rejected)
    margins = chosen_rewards - rejected_rewards
    loss = -F.logsigmoid(margins).mean()
    return loss
"""),
        A("dpo_no_ref", """\
    return -F.logsigmoid(beta * (logp_pol_chosen - logp_pol_rejected)).mean()
"""),
        A("dpo_no_ref", """\
    margin = logp_pol_chosen - logp_pol_rejected
    loss = -F.logsigmoid(beta * margin)
    return loss.mean()
""", doc=False),
        A("dpo_no_ref", """\
    logits = beta * (logp_pol_chosen - logp_pol_rejected)
    return -torch.nn.functional.logsigmoid(logits).mean()
""", imports=T),
        A("dpo_log_sigmoid", """\
    h = beta * ((logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected))
    return -torch.log(torch.sigmoid(h)).mean()
""", imports=T),
        A("dpo_swapped", """\
    chosen = logp_pol_chosen - logp_ref_chosen
    rejected = logp_pol_rejected - logp_ref_rejected
    return -F.logsigmoid(beta * (rejected - chosen)).mean()
"""),
        A("dpo_sum", """\
    m = (logp_pol_chosen - logp_ref_chosen) - (logp_pol_rejected - logp_ref_rejected)
    return -F.logsigmoid(beta * m).sum()
""", doc=False),
    ],
    "implicit_reward": [
        A("ok", "    return beta * (logp_pol - logp_ref)\n", doc=False),
        A("ok", "    return (logp_pol - logp_ref) * beta\n"),
        A("ok", "    return beta * logp_pol - beta * logp_ref\n"),
        A("ok", "    log_ratio = logp_pol - logp_ref\n    return beta * log_ratio\n"),
        A("ok", "    return torch.mul(beta, logp_pol - logp_ref)\n", imports=T),
        A("ok", "    # the implicit reward is beta times the log-ratio\n    return beta*(logp_pol-logp_ref)\n"),
        A("ok", "    diff = logp_pol - logp_ref\n    reward = diff * beta\n    return reward\n", doc=False),
        A("ok", "    return (logp_pol - logp_ref).mul(beta)\n"),
        A("ok", "    return beta * torch.sub(logp_pol, logp_ref)\n", imports=T),
        A("ok", "    r = beta * (logp_pol - logp_ref)\n    return r\n"),
        A("ok", "    ratio = logp_pol - logp_ref  # log(pi / pi_ref)\n    return ratio * beta\n", doc=False),
        A("ok", "    out = logp_pol.sub(logp_ref)\n    out = out * beta\n    return out\n"),
        A("ok", "    return beta * (logp_pol + (-logp_ref))\n"),
        A("ok", "    scaled = beta * logp_pol\n    return scaled - beta * logp_ref\n"),
        A("ok", "    return torch.as_tensor(beta) * (logp_pol - logp_ref)\n", imports=T),
        A("reward_no_beta", "    return logp_pol - logp_ref\n"),
        A("reward_no_beta", "    reward = logp_pol - logp_ref\n    return reward\n", doc=False),
        A("reward_reversed", "    return beta * (logp_ref - logp_pol)\n"),
        A("reward_no_ref", "    return beta * logp_pol\n", doc=False),
        A("reward_divides", "    return (logp_pol - logp_ref) / beta\n"),
    ],
    "toy_dpo_step": [
        A("ok", """\
    prompts, chosen, rejected = batch
    pol = policy.logprobs(prompts)
    with torch.no_grad():
        ref_lp = ref.logprobs(prompts)
    rows = torch.arange(len(prompts))
    loss = dpo_loss(pol[rows, chosen], pol[rows, rejected], ref_lp[rows, chosen], ref_lp[rows, rejected], beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    p, c, r = batch
    lp = policy.logprobs(p)                       # (K, N)
    lp_ref = ref.logprobs(p).detach()             # no gradient into the reference
    pc = lp.gather(1, c.unsqueeze(1)).squeeze(1)
    pr = lp.gather(1, r.unsqueeze(1)).squeeze(1)
    rc = lp_ref.gather(1, c.unsqueeze(1)).squeeze(1)
    rr = lp_ref.gather(1, r.unsqueeze(1)).squeeze(1)
    loss = dpo_loss(pc, pr, rc, rr, beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return float(loss)
""", doc=False),
        A("ok", """\
    prompt_idx, chosen_idx, rejected_idx = batch
    optimizer.zero_grad()
    policy_lp = policy.logprobs(prompt_idx)
    with torch.no_grad():
        reference_lp = ref.logprobs(prompt_idx)
    idx = torch.arange(prompt_idx.shape[0])
    l = dpo_loss(policy_lp[idx, chosen_idx], policy_lp[idx, rejected_idx],
                 reference_lp[idx, chosen_idx], reference_lp[idx, rejected_idx], beta=beta)
    l.backward()
    optimizer.step()
    return l.item()
"""),
        A("ok", """\
    def take(table, which):
        return torch.gather(table, 1, which.view(-1, 1)).view(-1)

    x, yw, yl = batch
    now = policy.logprobs(x)
    with torch.no_grad():
        base = ref.logprobs(x)
    value = dpo_loss(take(now, yw), take(now, yl), take(base, yw), take(base, yl), beta=beta)
    optimizer.zero_grad()
    value.backward()
    optimizer.step()
    return value.item()
"""),
        A("ok", """\
    prompts, good, bad = batch
    logp = policy.logprobs(prompts)
    logp_r = ref.logprobs(prompts).detach()
    ar = torch.arange(good.numel())
    # implicit-reward margin, written out instead of calling dpo_loss
    margin = (logp[ar, good] - logp_r[ar, good]) - (logp[ar, bad] - logp_r[ar, bad])
    loss = -torch.nn.functional.logsigmoid(beta * margin).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    prompt_idx, chosen_idx, rejected_idx = batch
    with torch.no_grad():
        ref_all = ref.logprobs(prompt_idx)
    pol_all = policy.logprobs(prompt_idx)
    n = len(chosen_idx)
    args = []
    for table in (pol_all, ref_all):
        args.append(table[torch.arange(n), chosen_idx])
        args.append(table[torch.arange(n), rejected_idx])
    loss = dpo_loss(args[0], args[1], args[2], args[3], beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.detach().item()
""", doc=False),
        A("ok", """\
    prompts, chosen, rejected = batch
    optimizer.zero_grad(set_to_none=True)
    lp_policy = policy.logprobs(prompts)
    lp_reference = ref.logprobs(prompts).detach()
    both = torch.stack([chosen, rejected], dim=1)                # (K, 2)
    pol_pair = lp_policy.gather(1, both)                         # (K, 2)
    ref_pair = lp_reference.gather(1, both)                      # (K, 2)
    loss = dpo_loss(pol_pair[:, 0], pol_pair[:, 1], ref_pair[:, 0], ref_pair[:, 1], beta=beta)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    x, w, l = batch
    with torch.no_grad():
        lr = ref.logprobs(x)
    lp = policy.logprobs(x)
    i = range(len(x))
    loss = dpo_loss(lp[i, w], lp[i, l], lr[i, w], lr[i, l], beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
""", imports=T),
        A("ok", """\
    prompt_idx, chosen_idx, rejected_idx = batch
    K = prompt_idx.size(0)
    ar = torch.arange(K)
    logp_policy = policy.logprobs(prompt_idx)
    with torch.no_grad():
        logp_reference = ref.logprobs(prompt_idx)
    logp_pol_chosen = logp_policy[ar, chosen_idx]
    logp_pol_rejected = logp_policy[ar, rejected_idx]
    logp_ref_chosen = logp_reference[ar, chosen_idx]
    logp_ref_rejected = logp_reference[ar, rejected_idx]
    loss = dpo_loss(logp_pol_chosen, logp_pol_rejected, logp_ref_chosen, logp_ref_rejected, beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    prompts, ch, rj = batch
    # policy log-probs keep their graph, the reference's do not
    pol = policy.logprobs(prompts)
    with torch.inference_mode():
        frozen = ref.logprobs(prompts)
    frozen = frozen.clone()
    pick = lambda t, j: t.gather(-1, j[:, None])[:, 0]
    loss = dpo_loss(pick(pol, ch), pick(pol, rj), pick(frozen, ch), pick(frozen, rj), beta=beta)
    for p in policy.parameters():
        p.grad = None
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    prompt_idx, chosen_idx, rejected_idx = batch
    pol = policy.logprobs(prompt_idx)
    ref_lp = ref.logprobs(prompt_idx).detach()
    loss = dpo_loss(
        pol.gather(1, chosen_idx[:, None]).squeeze(1),
        pol.gather(1, rejected_idx[:, None]).squeeze(1),
        ref_lp.gather(1, chosen_idx[:, None]).squeeze(1),
        ref_lp.gather(1, rejected_idx[:, None]).squeeze(1),
        beta=beta,
    )
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
""", doc=False),
        A("ok", """\
    prompt, chosen, rejected = batch
    one_hot_c = torch.nn.functional.one_hot(chosen, policy.logits.shape[1]).float()
    one_hot_r = torch.nn.functional.one_hot(rejected, policy.logits.shape[1]).float()
    lp = policy.logprobs(prompt)
    with torch.no_grad():
        lp0 = ref.logprobs(prompt)
    loss = dpo_loss((lp * one_hot_c).sum(1), (lp * one_hot_r).sum(1),
                    (lp0 * one_hot_c).sum(1), (lp0 * one_hot_r).sum(1), beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    px, cx, rx = batch
    ref_table = ref.logprobs(px).detach()
    table = policy.logprobs(px)
    k = torch.arange(len(px))
    chosen_ratio = table[k, cx] - ref_table[k, cx]
    rejected_ratio = table[k, rx] - ref_table[k, rx]
    loss = torch.nn.functional.softplus(-beta * (chosen_ratio - rejected_ratio)).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    prompts, winners, losers = batch
    optimizer.zero_grad()
    current = policy.logprobs(prompts)
    with torch.no_grad():
        start = ref.logprobs(prompts)
    sel = lambda m, col: m[torch.arange(m.shape[0]), col]
    loss = dpo_loss(sel(current, winners), sel(current, losers), sel(start, winners), sel(start, losers), beta)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    prompt_idx, chosen_idx, rejected_idx = batch
    logps = policy.logprobs(prompt_idx)
    with torch.no_grad():
        ref_logps = ref.logprobs(prompt_idx)
    rows = torch.arange(prompt_idx.numel())
    chosen_pair = (logps[rows, chosen_idx], ref_logps[rows, chosen_idx])
    rejected_pair = (logps[rows, rejected_idx], ref_logps[rows, rejected_idx])
    loss = dpo_loss(chosen_pair[0], rejected_pair[0], chosen_pair[1], rejected_pair[1], beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    loss_value = loss.item()
    return loss_value
""", doc=False),
        A("ok", """\
    p_idx, c_idx, r_idx = batch
    log_pi = policy.logprobs(p_idx)
    log_pi_ref = ref.logprobs(p_idx)
    log_pi_ref = log_pi_ref.detach()
    gather = lambda t, i: torch.take_along_dim(t, i.unsqueeze(-1), dim=-1).squeeze(-1)
    loss = dpo_loss(gather(log_pi, c_idx), gather(log_pi, r_idx), gather(log_pi_ref, c_idx), gather(log_pi_ref, r_idx), beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("toy_no_zero_grad", """\
    prompts, chosen, rejected = batch
    pol = policy.logprobs(prompts)
    with torch.no_grad():
        old = ref.logprobs(prompts)
    j = torch.arange(len(prompts))
    loss = dpo_loss(pol[j, chosen], pol[j, rejected], old[j, chosen], old[j, rejected], beta=beta)
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("toy_swapped", """\
    prompt_idx, chosen_idx, rejected_idx = batch
    lp = policy.logprobs(prompt_idx)
    lr = ref.logprobs(prompt_idx).detach()
    g = lambda t, i: t.gather(1, i.unsqueeze(1)).squeeze(1)
    loss = dpo_loss(g(lp, rejected_idx), g(lp, chosen_idx), g(lr, rejected_idx), g(lr, chosen_idx), beta=beta)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
""", doc=False),
        A("toy_default_beta", """\
    prompts, chosen, rejected = batch
    logp = policy.logprobs(prompts)
    with torch.no_grad():
        logp_ref = ref.logprobs(prompts)
    ix = torch.arange(len(chosen))
    loss = dpo_loss(logp[ix, chosen], logp[ix, rejected], logp_ref[ix, chosen], logp_ref[ix, rejected])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("toy_loss_after_step", """\
    prompts, chosen, rejected = batch

    def compute():
        lp = policy.logprobs(prompts)
        with torch.no_grad():
            lr = ref.logprobs(prompts)
        i = torch.arange(len(prompts))
        return dpo_loss(lp[i, chosen], lp[i, rejected], lr[i, chosen], lr[i, rejected], beta=beta)

    optimizer.zero_grad()
    compute().backward()
    optimizer.step()
    return compute().item()
"""),
    ],
    "get_logps": [
        A("ok", """\
    logprobs = torch.log_softmax(logits[:, :-1, :], dim=-1)
    targets = input_ids[:, 1:]
    token_lp = torch.gather(logprobs, 2, targets.unsqueeze(-1)).squeeze(-1)
    mask = response_mask[:, 1:].float()
    total = (token_lp * mask).sum(dim=1)
    if average:
        return total / mask.sum(dim=1).clamp(min=1)
    return total
""", imports=T),
        A("ok", """\
    lp = F.log_softmax(logits.float(), dim=-1)[:, :-1]        # (B, T-1, V): position t predicts t+1
    tok = lp.gather(-1, input_ids[:, 1:, None])[..., 0]       # (B, T-1)
    m = response_mask[:, 1:].to(tok.dtype)
    s = (tok * m).sum(-1)
    return s / m.sum(-1).clamp_min(1.0) if average else s
""", imports="import torch.nn.functional as F\n", doc=False),
        A("ok", """\
    B, T, V = logits.shape
    shifted_logits = logits[:, : T - 1]
    shifted_labels = input_ids[:, 1:]
    shifted_mask = response_mask[:, 1:].bool()
    nll = torch.nn.functional.cross_entropy(shifted_logits.reshape(-1, V).float(), shifted_labels.reshape(-1), reduction="none")
    per_token = -nll.view(B, T - 1)
    per_token = per_token.masked_fill(~shifted_mask, 0.0)
    summed = per_token.sum(1)
    if not average:
        return summed
    counts = shifted_mask.sum(1)
    return summed / torch.clamp(counts, min=1)
""", imports=T),
        A("ok", """\
    # the logits at position t score token t+1: drop the last logit and the first token
    log_p = logits[:, :-1].float().log_softmax(-1)
    picked = log_p.gather(2, input_ids[:, 1:].unsqueeze(2)).squeeze(2)
    # the mask marks tokens, so it moves with the tokens
    keep = response_mask[:, 1:] == 1
    picked = torch.where(keep, picked, torch.zeros_like(picked))
    result = picked.sum(dim=-1)
    if average:
        n = keep.sum(dim=-1).clamp(min=1)
        result = result / n
    return result
""", imports=T),
        A("ok", """\
    out = []
    for b in range(logits.shape[0]):
        row_lp = torch.log_softmax(logits[b, :-1].float(), dim=-1)      # (T-1, V)
        ids = input_ids[b, 1:]
        vals = row_lp[torch.arange(ids.shape[0]), ids]
        m = response_mask[b, 1:].bool()
        chosen = vals[m]
        if chosen.numel() == 0:
            out.append(vals.new_zeros(()))
        elif average:
            out.append(chosen.mean())
        else:
            out.append(chosen.sum())
    return torch.stack(out)
""", imports=T, doc=False),
        A("ok", """\
    norm = logits[:, :-1] - torch.logsumexp(logits[:, :-1], dim=-1, keepdim=True)
    labels = input_ids[:, 1:]
    lp = norm.gather(-1, labels[..., None]).squeeze(-1)
    w = response_mask[:, 1:].type_as(lp)
    total = torch.einsum("bt,bt->b", lp, w)
    if average:
        total = total / w.sum(-1).clamp(min=1)
    return total
""", imports=T),
        A("ok", """\
    def shift(t):
        return t[:, 1:]

    log_probs = torch.log_softmax(logits, dim=-1)[:, :-1]
    chosen_lp = torch.gather(log_probs, dim=2, index=shift(input_ids).unsqueeze(-1)).squeeze(-1)
    mask = shift(response_mask).float()
    summed = (chosen_lp * mask).sum(dim=1)
    denom = mask.sum(dim=1)
    denom[denom == 0] = 1
    return summed / denom if average else summed
""", imports=T),
        A("ok", """\
    x = logits[:, :-1].double()
    y = input_ids[:, 1:]
    mask = response_mask[:, 1:].double()
    lse = torch.logsumexp(x, dim=2)                               # (B, T-1)
    gold = x.gather(2, y.unsqueeze(2)).squeeze(2)                 # (B, T-1)
    token_logp = (gold - lse) * mask
    res = token_logp.sum(1)
    if average:
        res = res / torch.maximum(mask.sum(1), torch.ones_like(res))
    return res.to(logits.dtype)
""", imports=T, doc=False),
        A("ok", """\
    labels = input_ids[..., 1:].unsqueeze(-1)
    scores = logits[..., :-1, :]
    lps = (scores.gather(-1, labels) - scores.logsumexp(-1, keepdim=True)).squeeze(-1)
    on = response_mask[..., 1:].to(lps.dtype)
    tot = (lps * on).sum(-1)
    if not average:
        return tot
    cnt = on.sum(-1)
    return tot / cnt.clamp(min=1.0)
"""),
        A("ok", """\
    tokens = input_ids[:, 1:]
    preds = logits[:, :-1, :]
    logsm = torch.nn.functional.log_softmax(preds, dim=2)
    per_tok = logsm.gather(dim=2, index=tokens.unsqueeze(2)).squeeze(2)
    resp = response_mask[:, 1:]
    masked = per_tok * resp
    answer = masked.sum(dim=1)
    if average:
        num = resp.sum(dim=1)
        answer = torch.where(num > 0, answer / num.clamp(min=1), torch.zeros_like(answer))
    return answer
""", imports=T),
        A("ok", """\
    logp_all = torch.log_softmax(logits.float(), -1)
    next_token_lp = logp_all[:, :-1].gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    on_response = response_mask[:, 1:]
    totals = (next_token_lp * on_response).sum(-1)
    lengths = on_response.sum(-1)
    if average:
        totals = totals / lengths.clamp(min=1)
    return totals
""", imports=T, doc=False),
        A("ok", """\
    ce = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2).float(),   # (B, V, T-1)
        input_ids[:, 1:],                          # (B, T-1)
        reduction="none",
    )
    token_lp = -ce
    m = response_mask[:, 1:].to(token_lp.dtype)
    per_seq = (token_lp * m).sum(dim=1)
    if average:
        return per_seq / m.sum(dim=1).clamp(min=1)
    return per_seq
""", imports=T),
        A("ok", """\
    lsm = logits.log_softmax(dim=-1)
    lsm = lsm[:, :-1]
    idx = input_ids[:, 1:]
    per_token = torch.take_along_dim(lsm, idx[:, :, None], dim=2)[:, :, 0]
    mask = response_mask[:, 1:].bool()
    per_token = per_token * mask
    total = per_token.sum(1)
    if average:
        total = total / mask.sum(1).clamp(min=1)
    return total
""", imports=T),
        A("ok", """\
    B = logits.size(0)
    lp = torch.log_softmax(logits[:, :-1], -1)
    nxt = input_ids[:, 1:]
    rows = torch.arange(B)[:, None]
    cols = torch.arange(nxt.size(1))[None, :]
    tok_lp = lp[rows, cols, nxt]                # (B, T-1)
    mk = response_mask[:, 1:].float()
    seq = (tok_lp * mk).sum(-1)
    return seq / mk.sum(-1).clamp(min=1) if average else seq
""", imports=T),
        A("ok", """\
    # shift: predictions for tokens 1..T-1
    logits = logits[:, :-1, :]
    targets = input_ids[:, 1:]
    mask = response_mask[:, 1:]
    logprobs = logits.log_softmax(-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    logprobs = logprobs.masked_fill(mask == 0, 0)
    if average:
        return logprobs.sum(-1) / mask.sum(-1).clamp(min=1)
    return logprobs.sum(-1)
""", doc=False),
        A("lp_unshifted_mask", """\
    lp = torch.log_softmax(logits[:, :-1], dim=-1)
    tgt = input_ids[:, 1:]
    tok = lp.gather(2, tgt.unsqueeze(2)).squeeze(2)
    mask = response_mask[:, :-1].float()
    s = (tok * mask).sum(1)
    return s / mask.sum(1).clamp(min=1) if average else s
""", imports=T),
        A("lp_no_shift", """\
    lp = torch.log_softmax(logits, dim=-1)
    tok = lp.gather(-1, input_ids.unsqueeze(-1)).squeeze(-1)
    m = response_mask.float()
    total = (tok * m).sum(-1)
    if average:
        total = total / m.sum(-1).clamp(min=1)
    return total
""", imports=T),
        A("lp_no_shift", """\
    log_probs = F.log_softmax(logits, dim=2)
    per_token = torch.gather(log_probs, 2, input_ids[:, :, None])[:, :, 0]
    per_token = per_token * response_mask
    if average:
        return per_token.sum(1) / response_mask.sum(1).clamp(min=1)
    return per_token.sum(1)
""", imports="import torch\nimport torch.nn.functional as F\n", doc=False),
        A("lp_no_mask", """\
    lp = torch.log_softmax(logits[:, :-1], -1).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    if average:
        return lp.mean(-1)
    return lp.sum(-1)
""", imports=T),
        A("lp_naive_log_softmax", """\
    probs = torch.softmax(logits[:, :-1], dim=-1)
    tok = torch.log(probs).gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    msk = response_mask[:, 1:].float()
    tot = (tok * msk).sum(-1)
    if average:
        return tot / msk.sum(-1).clamp(min=1)
    return tot
""", imports=T),
    ],
    "rms_norm": [
        A("ok", "    rms = torch.sqrt(x.pow(2).mean(-1, keepdim=True) + eps)\n    return x / rms * weight\n"),
        A("ok", "    return x * torch.rsqrt(torch.mean(x * x, dim=-1, keepdim=True) + eps) * weight\n", doc=False),
        A("ok", "    ms = (x ** 2).mean(dim=-1, keepdim=True)\n    normed = x / torch.sqrt(ms + eps)\n    return normed * weight\n"),
        A("ok", "    # root mean square over the features\n    denom = (x.square().mean(-1, keepdim=True) + eps).sqrt()\n    return weight * (x / denom)\n"),
        A("ok", "    norm = x.norm(dim=-1, keepdim=True) / x.shape[-1] ** 0.5\n"
                "    return x / torch.sqrt(norm ** 2 + eps) * weight\n"),
        A("ok", "    variance = x.float().pow(2).mean(-1, keepdim=True)\n"
                "    hidden = x.float() * torch.rsqrt(variance + eps)\n    return weight * hidden.to(x.dtype)\n"),
        A("ok", "    d = x.shape[-1]\n    ms = (x * x).sum(dim=-1, keepdim=True) / d\n    return weight * x / (ms + eps) ** 0.5\n", doc=False),
        A("ok", "    scale = 1.0 / torch.sqrt(torch.mean(x ** 2, -1, keepdim=True) + eps)\n    return x * scale * weight\n"),
        A("ok", "    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt() * weight\n"),
        A("ok", "    mean_sq = torch.mean(torch.square(x), dim=-1).unsqueeze(-1)\n    y = x * torch.rsqrt(mean_sq + eps)\n    return y * weight\n"),
        A("ok", "    rms = (x.pow(2).mean(dim=x.dim() - 1, keepdim=True) + eps) ** 0.5\n    out = x / rms\n    out = out * weight\n    return out\n", doc=False),
        A("ok", "    inv = torch.rsqrt(x.square().mean(-1, keepdim=True).add(eps))\n    return x.mul(inv).mul(weight)\n"),
        A("ok", "    # RMSNorm: no mean subtraction, no bias\n    r = torch.sqrt(torch.mean(x**2, dim=-1, keepdim=True) + eps)\n    return (x / r) * weight\n"),
        A("ok", "    msq = x.pow(2).sum(-1, keepdim=True) / x.size(-1)\n    return x * (msq + eps).rsqrt() * weight\n"),
        A("ok", "    return weight * x / torch.sqrt(torch.mean(x * x, dim=-1, keepdim=True) + eps)\n", doc=False),
        A("ok", "    s = x.pow(2).mean(-1, keepdim=True)\n    return x * torch.pow(s + eps, -0.5) * weight\n"),
        A("rms_eps_outside", "    rms = x.pow(2).mean(-1, keepdim=True).sqrt()\n    return x / (rms + eps) * weight\n"),
        A("rms_no_weight", "    return x / torch.sqrt((x ** 2).mean(dim=-1, keepdim=True) + eps)\n", doc=False),
        A("rms_layernorm", "    centered = x - x.mean(-1, keepdim=True)\n"
                           "    return centered / torch.sqrt(centered.pow(2).mean(-1, keepdim=True) + eps) * weight\n"),
        A("rms_l2", "    return x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) + eps) * weight\n"),
    ],
    "swiglu": [
        A("ok", "    return (F.silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T\n"),
        A("ok", "    gate = torch.nn.functional.silu(x @ w_gate.t())\n    up = x @ w_up.t()\n    return (gate * up) @ w_down.t()\n", imports=T),
        A("ok", "    g = F.linear(x, w_gate)\n    u = F.linear(x, w_up)\n    return F.linear(F.silu(g) * u, w_down)\n", doc=False),
        A("ok", "    a = x @ w_gate.T\n    h = a * torch.sigmoid(a) * (x @ w_up.T)  # silu(a) = a * sigmoid(a)\n    return h @ w_down.T\n", imports=T),
        A("ok", "    hidden = F.silu(torch.matmul(x, w_gate.transpose(0, 1))) * torch.matmul(x, w_up.transpose(0, 1))\n"
                "    return torch.matmul(hidden, w_down.transpose(0, 1))\n", imports=T),
        A("ok", "    # gate and up projections, (..., F)\n    gate_proj = F.silu(F.linear(x, w_gate))\n    up_proj = F.linear(x, w_up)\n"
                "    # back down to (..., D)\n    return F.linear(gate_proj * up_proj, w_down)\n"),
        A("ok", "    return torch.einsum('...f,df->...d', F.silu(torch.einsum('...d,fd->...f', x, w_gate)) * torch.einsum('...d,fd->...f', x, w_up), w_down)\n",
          imports=T, doc=False),
        A("ok", "    z = x @ w_gate.T\n    act = z / (1 + torch.exp(-z))\n    return (act * (x @ w_up.T)) @ w_down.T\n", imports=T),
        A("ok", "    both = x @ torch.cat([w_gate, w_up]).T\n    g, u = both.chunk(2, dim=-1)\n    return (F.silu(g) * u) @ w_down.T\n", imports=T),
        A("ok", "    h = F.silu(x @ w_gate.mT)\n    h = h * (x @ w_up.mT)\n    return h @ w_down.mT\n"),
        A("ok", "    up = torch.mm(x.reshape(-1, x.shape[-1]), w_up.T)\n    gate = F.silu(torch.mm(x.reshape(-1, x.shape[-1]), w_gate.T))\n"
                "    out = torch.mm(gate * up, w_down.T)\n    return out.reshape(*x.shape[:-1], -1)\n", imports=T, doc=False),
        A("ok", "    gated = F.silu(x.matmul(w_gate.T)).mul(x.matmul(w_up.T))\n    return gated.matmul(w_down.T)\n"),
        A("ok", "    silu = torch.nn.SiLU()\n    return (silu(x @ w_gate.T) * (x @ w_up.T)) @ w_down.T\n", imports=T),
        A("ok", "    proj_gate = x @ w_gate.T\n    proj_up = x @ w_up.T\n    activated = F.silu(proj_gate)\n    combined = activated * proj_up\n"
                "    output = combined @ w_down.T\n    return output\n"),
        A("ok", "    return F.linear(F.silu(F.linear(x, w_gate)) * F.linear(x, w_up), w_down)\n", doc=False),
        A("ok", "    a = torch.nn.functional.silu(x @ w_gate.transpose(-1, -2))\n    b = x @ w_up.transpose(-1, -2)\n"
                "    return (a * b) @ w_down.transpose(-1, -2)\n", imports=T),
        A("sw_silu_on_up", "    return ((x @ w_gate.T) * F.silu(x @ w_up.T)) @ w_down.T\n"),
        A("sw_gelu", "    g = F.gelu(x @ w_gate.T)\n    return (g * (x @ w_up.T)) @ w_down.T\n", doc=False),
        A("sw_relu", "    hidden = torch.relu(x @ w_gate.T) * (x @ w_up.T)\n    return hidden @ w_down.T\n", imports=T),
        A("sw_sigmoid", "    gate = torch.sigmoid(x @ w_gate.T)\n    return (gate * (x @ w_up.T)) @ w_down.T\n", imports=T),
    ],
    "apply_rope": [
        A("ok", """\
    if cos.dim() == 3:
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    d = x.shape[-1] // 2
    a, b = x[..., :d], x[..., d:]
    return torch.cat((a * cos - b * sin, a * sin + b * cos), dim=-1)
""", imports=T),
        A("ok", """\
    cos, sin = cos.unsqueeze(-3), sin.unsqueeze(-3)    # (1, T, Dh/2) or (B, 1, T, Dh/2)
    x1, x2 = x.chunk(2, dim=-1)
    out1 = x1 * cos - x2 * sin
    out2 = x2 * cos + x1 * sin
    return torch.cat([out1, out2], dim=-1)
""", imports=T, doc=False),
        A("ok", """\
    half = x.size(-1) // 2
    if cos.ndim == 3:
        cos = cos[:, None, :, :]
        sin = sin[:, None, :, :]
    c = torch.cat([cos, cos], dim=-1)
    s = torch.cat([sin, sin], dim=-1)
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)   # rotate half
    return x * c + rotated * s
""", imports=T),
        A("ok", """\
    def rotate_half(t):
        t1, t2 = t.chunk(2, -1)
        return torch.cat((-t2, t1), -1)

    if cos.dim() == 3:
        cos, sin = cos[:, None], sin[:, None]
    cos2 = cos.repeat_interleave(1, -1).repeat(*([1] * (cos.dim() - 1)), 2)
    sin2 = sin.repeat(*([1] * (sin.dim() - 1)), 2)
    return x * cos2 + rotate_half(x) * sin2
""", imports=T),
        A("ok", """\
    n = x.shape[-1] // 2
    left = x[..., :n]
    right = x[..., n:]
    if cos.dim() == 3:   # per-sequence positions
        cos = cos.unsqueeze(1)
        sin = sin.unsqueeze(1)
    new_left = left * cos - right * sin
    new_right = left * sin + right * cos
    return torch.cat([new_left, new_right], -1)
""", imports=T, doc=False),
        A("ok", """\
    c = cos if cos.dim() == 2 else cos[:, None, :, :]
    s = sin if sin.dim() == 2 else sin[:, None, :, :]
    first, second = torch.split(x, x.shape[-1] // 2, dim=-1)
    return torch.cat((first * c - second * s, second * c + first * s), dim=-1)
""", imports=T),
        A("ok", """\
    # (B, H, T, Dh): rotate the pair (i, i + Dh/2) by the angle at i
    h = x.shape[-1] // 2
    if cos.dim() == 3:
        cos = cos.unsqueeze(1)
        sin = sin.unsqueeze(1)
    out = torch.empty_like(x)
    out[..., :h] = x[..., :h] * cos - x[..., h:] * sin
    out[..., h:] = x[..., h:] * cos + x[..., :h] * sin
    return out
""", imports=T),
        A("ok", """\
    while cos.dim() < x.dim():
        cos = cos.unsqueeze(-3)
        sin = sin.unsqueeze(-3)
    xr, xi = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2 :]
    z = torch.complex(xr.float(), xi.float()) * torch.complex(cos.float(), sin.float())
    return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)
""", imports=T, doc=False),
        A("ok", """\
    D = x.shape[-1]
    if cos.dim() == 3:
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    x_lo, x_hi = x[..., : D // 2], x[..., D // 2 :]
    rot_lo = x_lo * cos - x_hi * sin
    rot_hi = x_hi * cos + x_lo * sin
    return torch.cat((rot_lo, rot_hi), dim=x.dim() - 1)
""", imports=T),
        A("ok", """\
    cos = cos.unsqueeze(-3) if cos.dim() == 3 else cos
    sin = sin.unsqueeze(-3) if sin.dim() == 3 else sin
    u, v = x.tensor_split(2, dim=-1)
    return torch.cat([u * cos - v * sin, u * sin + v * cos], -1)
""", imports=T),
        A("ok", """\
    if len(cos.shape) == 3:
        cos = cos.view(cos.shape[0], 1, cos.shape[1], cos.shape[2])
        sin = sin.view(sin.shape[0], 1, sin.shape[1], sin.shape[2])
    half = x.shape[3] // 2
    p, q = x[:, :, :, :half], x[:, :, :, half:]
    return torch.cat([p * cos - q * sin, q * cos + p * sin], dim=3)
""", imports=T, doc=False),
        A("ok", """\
    k = x.shape[-1] // 2
    x_a = x.narrow(-1, 0, k)
    x_b = x.narrow(-1, k, k)
    if cos.dim() == 3:
        cos = cos.unsqueeze(1)
        sin = sin.unsqueeze(1)
    return torch.cat([x_a.mul(cos).sub(x_b.mul(sin)), x_a.mul(sin).add(x_b.mul(cos))], dim=-1)
""", imports=T),
        A("ok", """\
    if cos.dim() == 3:
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    cos_full = torch.cat([cos, cos], -1)
    sin_full = torch.cat([sin, sin], -1)
    h = x.shape[-1] // 2
    x_rot = torch.cat([-x[..., h:], x[..., :h]], -1)
    return x * cos_full + x_rot * sin_full
""", imports=T),
        A("ok", """\
    half = x.shape[-1] // 2
    x1 = x[..., :half]
    x2 = x[..., half:]
    if cos.dim() == 3:
        cos = cos[:, None]
        sin = sin[:, None]
    y1 = x1 * cos - x2 * sin
    y2 = x1 * sin + x2 * cos
    return torch.cat([y1, y2], dim=-1)
""", imports=T),
        A("ok", """\
    c, s = (cos, sin) if cos.dim() == 2 else (cos.unsqueeze(1), sin.unsqueeze(1))
    m = x.shape[-1] // 2
    pairs = torch.stack([x[..., :m], x[..., m:]], dim=0)               # (2, B, H, T, Dh/2)
    rot = torch.stack([pairs[0] * c - pairs[1] * s, pairs[0] * s + pairs[1] * c], dim=0)
    return torch.cat([rot[0], rot[1]], dim=-1)
""", imports=T, doc=False),
        A("ok", """\
    if cos.dim() == 3:
        cos = cos.unsqueeze(1)
        sin = sin.unsqueeze(1)
    x1, x2 = torch.chunk(x, 2, dim=-1)
    # 2-D rotation of each (x1, x2) pair
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
""", imports=T),
        A("rope_swapped_trig", """\
    if cos.dim() == 3:
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    a, b = x.chunk(2, dim=-1)
    return torch.cat([a * sin - b * cos, a * cos + b * sin], dim=-1)
""", imports=T),
        A("rope_wrong_way", """\
    half = x.shape[-1] // 2
    if cos.dim() == 3:
        cos = cos[:, None]
        sin = sin[:, None]
    lo, hi = x[..., :half], x[..., half:]
    return torch.cat([lo * cos + hi * sin, hi * cos - lo * sin], dim=-1)
""", imports=T, doc=False),
        A("rope_interleaved", """\
    if cos.dim() == 3:
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    even, odd = x[..., 0::2], x[..., 1::2]
    r_even = even * cos - odd * sin
    r_odd = even * sin + odd * cos
    return torch.stack([r_even, r_odd], dim=-1).flatten(-2)
""", imports=T),
        A("rope_first_half_only", """\
    if cos.dim() == 3:
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
    h = x.shape[-1] // 2
    first = x[..., :h] * cos - x[..., h:] * sin
    return torch.cat([first, x[..., h:]], dim=-1)
""", imports=T),
    ],
    "sft_step": [
        A("ok", """\
    ids = batch["input_ids"]
    logits = model(ids, batch["attention_mask"])
    lp = torch.log_softmax(logits[:, :-1], dim=-1)
    tok = lp.gather(2, ids[:, 1:].unsqueeze(2)).squeeze(2)
    m = batch["response_mask"][:, 1:].float()
    loss = -(tok * m).sum() / m.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    input_ids, attention_mask, response_mask = batch["input_ids"], batch["attention_mask"], batch["response_mask"]
    logits = model(input_ids, attention_mask)                        # (B, T, V)
    B, T, V = logits.shape
    targets = input_ids[:, 1:].clone()
    targets[response_mask[:, 1:] == 0] = -100                        # ignored by cross_entropy
    loss = F.cross_entropy(logits[:, :-1].reshape(-1, V), targets.reshape(-1), ignore_index=-100)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
""", imports="import torch.nn.functional as F\n", doc=False),
        A("ok", """\
    optimizer.zero_grad()
    out = model(batch["input_ids"], batch["attention_mask"])
    preds = out[:, :-1, :]
    labels = batch["input_ids"][:, 1:]
    mask = batch["response_mask"][:, 1:].bool()
    nll = torch.nn.functional.cross_entropy(preds.transpose(1, 2), labels, reduction="none")
    loss = nll[mask].mean()
    loss.backward()
    optimizer.step()
    return float(loss)
"""),
        A("ok", """\
    x = batch["input_ids"]
    logp = model(x, batch["attention_mask"]).log_softmax(-1)[:, :-1]
    picked = torch.gather(logp, -1, x[:, 1:, None]).squeeze(-1)
    keep = batch["response_mask"][:, 1:]
    loss = -(picked * keep).sum() / keep.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
""", doc=False),
        A("ok", """\
    # next-token prediction on the response only
    tokens = batch["input_ids"]
    logits = model(tokens, batch["attention_mask"])
    logits, tokens = logits[:, :-1], tokens[:, 1:]
    resp = batch["response_mask"][:, 1:].to(logits.dtype)
    token_nll = -torch.log_softmax(logits, dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    loss = (token_nll * resp).sum() / resp.sum().clamp(min=1)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    ids, attn, rmask = (batch[k] for k in ("input_ids", "attention_mask", "response_mask"))
    logits = model(ids, attn).float()
    lse = torch.logsumexp(logits[:, :-1], dim=-1)
    gold = logits[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
    w = rmask[:, 1:].float()
    loss = ((lse - gold) * w).sum() / w.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    model.train()
    inp = batch["input_ids"]
    scores = model(inp, batch["attention_mask"])
    log_probs = F.log_softmax(scores, dim=2)
    B, T, _ = log_probs.shape
    b_idx = torch.arange(B)[:, None]
    t_idx = torch.arange(T - 1)[None, :]
    token_lp = log_probs[b_idx, t_idx, inp[:, 1:]]
    mask = batch["response_mask"][:, 1:].float()
    loss = -(token_lp * mask).sum() / mask.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
""", imports="import torch.nn.functional as F\n", doc=False),
        A("ok", """\
    def response_nll(logits, ids, mask):
        lp = torch.log_softmax(logits[:, :-1], -1)
        lp = lp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        m = mask[:, 1:].to(lp.dtype)
        return -(lp * m).sum() / m.sum()

    loss = response_nll(model(batch["input_ids"], batch["attention_mask"]), batch["input_ids"], batch["response_mask"])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    ids = batch["input_ids"]
    am = batch["attention_mask"]
    rm = batch["response_mask"]
    out = model(ids, am)
    shift_logits = out[..., :-1, :].contiguous()
    shift_labels = ids[..., 1:].contiguous()
    shift_mask = rm[..., 1:].contiguous().view(-1).float()
    per_tok = torch.nn.functional.cross_entropy(shift_logits.view(-1, shift_logits.size(-1)), shift_labels.view(-1), reduction="none")
    loss = (per_tok * shift_mask).sum() / shift_mask.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    optimizer.zero_grad(set_to_none=True)
    seq = batch["input_ids"]
    lg = model(seq, batch["attention_mask"])
    lsm = lg[:, :-1].log_softmax(dim=-1)
    nxt = seq[:, 1:]
    tok = torch.take_along_dim(lsm, nxt[..., None], dim=-1).squeeze(-1)
    sel = batch["response_mask"][:, 1:] > 0
    loss = -tok[sel].mean()
    loss.backward()
    optimizer.step()
    return loss.detach().item()
""", doc=False),
        A("ok", """\
    logits = model(batch["input_ids"], batch["attention_mask"])
    V = logits.shape[-1]
    labels = torch.where(batch["response_mask"][:, 1:].bool(), batch["input_ids"][:, 1:], torch.full_like(batch["input_ids"][:, 1:], -100))
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    inputs = batch["input_ids"]
    predictions = model(inputs, batch["attention_mask"])[:, :-1]          # position t predicts t+1
    wanted = inputs[:, 1:]
    lp = predictions.log_softmax(-1).gather(-1, wanted.unsqueeze(-1)).squeeze(-1)
    weights = batch["response_mask"][:, 1:].type_as(lp)
    n_tokens = weights.sum()
    loss = -torch.sum(lp * weights) / n_tokens
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    ids = batch["input_ids"]
    logits = model(ids, batch["attention_mask"])
    total, count = 0.0, 0
    lp = torch.log_softmax(logits, -1)
    for b in range(ids.shape[0]):
        for t in range(1, ids.shape[1]):
            if batch["response_mask"][b, t]:
                total = total - lp[b, t - 1, ids[b, t]]
                count += 1
    loss = total / count
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
""", doc=False),
        A("ok", """\
    logits = model(batch["input_ids"], batch["attention_mask"])
    logprobs = logits.log_softmax(dim=-1)[:, :-1]
    target = batch["input_ids"][:, 1:]
    token_logprobs = logprobs.gather(dim=-1, index=target.unsqueeze(-1)).squeeze(-1)
    mask = batch["response_mask"][:, 1:]
    loss = -(token_logprobs * mask).sum() / mask.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("ok", """\
    ids = batch["input_ids"]
    logits = model(ids, batch["attention_mask"])
    nll = F.nll_loss(F.log_softmax(logits[:, :-1], -1).flatten(0, 1), ids[:, 1:].flatten(), reduction="none")
    m = batch["response_mask"][:, 1:].flatten().float()
    loss = (nll * m).sum() / m.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
""", imports="import torch.nn.functional as F\n"),
        A("sft_mask_not_shifted", """\
    ids = batch["input_ids"]
    logits = model(ids, batch["attention_mask"])
    lp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = batch["response_mask"][:, :-1].float()
    loss = -(lp * mask).sum() / mask.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("sft_prompt_in_loss", """\
    ids = batch["input_ids"]
    logits = model(ids, batch["attention_mask"])
    lp = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    keep = batch["attention_mask"][:, 1:].float()
    loss = -(lp * keep).sum() / keep.sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
""", doc=False),
        A("sft_per_sequence_mean", """\
    ids = batch["input_ids"]
    logp = torch.log_softmax(model(ids, batch["attention_mask"])[:, :-1], dim=-1)
    tok = torch.gather(logp, 2, ids[:, 1:].unsqueeze(2)).squeeze(2)
    m = batch["response_mask"][:, 1:].float()
    per_seq = (tok * m).sum(1) / m.sum(1).clamp(min=1)
    loss = -per_seq.mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("sft_no_zero_grad", """\
    ids = batch["input_ids"]
    out = model(ids, batch["attention_mask"])
    tok_lp = out[:, :-1].log_softmax(-1).gather(2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    w = batch["response_mask"][:, 1:].float()
    loss = -(tok_lp * w).sum() / w.sum()
    loss.backward()
    optimizer.step()
    return loss.item()
"""),
        A("sft_summed", """\
    ids = batch["input_ids"]
    lp = torch.log_softmax(model(ids, batch["attention_mask"]), -1)[:, :-1]
    tok = lp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    loss = -(tok * batch["response_mask"][:, 1:]).sum()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()
""", doc=False),
    ],
}
del A


# ---------------------------------------------------------------------------------------------------
# the cells


def _released_cells(lesson: str) -> dict[str, str]:
    from grader.similarity import exercise_cells

    return exercise_cells(json.loads((NOTEBOOKS_DIR / f"{lesson}.ipynb").read_text()))


def cell(exercise: str, answer: Answer) -> str:
    """The exercise cell a student hands in: the released stub with the body in place of the ``raise``."""
    stub = _released_cells(LESSON_OF[exercise])[exercise]
    head = re.sub(r"\n[ \t]*# YOUR CODE HERE\n[ \t]*raise NotImplementedError\(\)\s*$", "\n", stub)
    if not answer.doc:
        head = re.sub(r'\n[ \t]*"""(?:.|\n)*?"""[ \t]*\n', "\n", head, count=1)
    return answer.imports + head + answer.body


# ---------------------------------------------------------------------------------------------------
# planted copies: the disguises a copier uses


def _function(tree: ast.Module) -> ast.FunctionDef:
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef))


def rename(code: str) -> str:
    """Every local name of the exercise function (assigned, loop, inner-def and lambda names) renamed."""
    fn = _function(ast.parse(code))
    params = {a.arg for a in fn.args.args + fn.args.kwonlyargs}
    local = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            local.add(node.id)
        elif isinstance(node, ast.FunctionDef) and node is not fn:
            local.add(node.name)
            local |= {a.arg for a in node.args.args}
        elif isinstance(node, ast.Lambda):
            local |= {a.arg for a in node.args.args}
    local -= params
    new = {name: f"my_{name}_v" if len(name) > 2 else f"tmp{i}" for i, name in enumerate(sorted(local))}
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(code).readline):
        if tok.type == tokenize.NAME and tok.string in new:
            tok = tok._replace(string=new[tok.string])
        out.append(tok)
    return tokenize.untokenize(out)


def _names(node, store: bool) -> set[str]:
    """Names a statement writes (``store``: assigned, or the base of an assigned subscript or attribute) or reads."""
    written = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for target in ast.walk(node):
        if isinstance(target, (ast.Subscript, ast.Attribute)) and isinstance(target.ctx, ast.Store):
            base = target
            while isinstance(base, (ast.Subscript, ast.Attribute)):
                base = base.value
            if isinstance(base, ast.Name):
                written.add(base.id)
    if store:
        return written
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def reorder(code: str) -> str:
    """Adjacent statements of the function body that do not depend on each other swapped (each pair once)."""
    lines = code.splitlines(keepends=True)
    fn = _function(ast.parse(code))
    body = [s for s in fn.body if not (isinstance(s, ast.Expr) and isinstance(getattr(s, "value", None), ast.Constant))]
    spans = [(s.lineno - 1, s.end_lineno) for s in body]
    order = list(range(len(body)))
    i = 0
    while i + 1 < len(body):
        a, b = body[i], body[i + 1]
        independent = (not isinstance(b, (ast.Return, ast.FunctionDef)) and not isinstance(a, ast.Return)
                       and not (_names(a, True) & (_names(b, False) | _names(b, True)))
                       and not (_names(b, True) & _names(a, False))
                       and not any(isinstance(n, ast.Call) for s in (a, b) for n in ast.walk(s)
                                   if isinstance(n.func if isinstance(n, ast.Call) else None, ast.Attribute)
                                   and n.func.attr in ("zero_grad", "backward", "step")))
        if independent:
            order[i], order[i + 1] = order[i + 1], order[i]
            i += 2
        else:
            i += 1
    head = "".join(lines[:spans[0][0]])
    tail = "".join(lines[spans[-1][1]:])
    return head + "".join("".join(lines[spans[j][0]:spans[j][1]]) for j in order) + tail


def pad(code: str) -> str:
    """Comments, blank lines and dead code added inside the function: a dead branch at the top of the
    body, a comment and a blank line after every other statement."""
    lines = code.splitlines(keepends=True)
    fn = _function(ast.parse(code))
    body = fn.body
    first = body[1] if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) else body[0]
    after = {s.end_lineno: i for i, s in enumerate(body) if s is not body[-1]}
    out = []
    for n, line in enumerate(lines, 1):
        if n == first.lineno:
            out.append("    debug = False\n    if debug:\n        print('checking shapes')\n\n")
        out.append(line)
        if n in after and after[n] % 2 == 0:
            out.append(f"    # step {after[n] + 1} (see the lecture notes)\n\n")
    return "".join(out)


DISGUISES = {"renamed": (rename,), "reordered": (reorder,), "padded": (pad,), "all three": (rename, reorder, pad)}

#: (exercise, index of the answer copied, disguise): each copy is one more student of that lesson
PLANTED = [
    ("dpo_loss", 0, "all three"), ("dpo_loss", 7, "renamed"), ("dpo_loss", 9, "all three"), ("dpo_loss", 15, "padded"),
    ("implicit_reward", 3, "all three"), ("implicit_reward", 11, "renamed"),
    ("toy_dpo_step", 0, "all three"), ("toy_dpo_step", 3, "reordered"), ("toy_dpo_step", 12, "all three"),
    ("toy_dpo_step", 18, "renamed"),
    ("get_logps", 2, "all three"), ("get_logps", 3, "renamed"), ("get_logps", 7, "reordered"), ("get_logps", 15, "all three"),
    ("rms_norm", 5, "all three"), ("rms_norm", 10, "renamed"),
    ("swiglu", 3, "all three"), ("swiglu", 13, "renamed"),
    ("apply_rope", 2, "all three"), ("apply_rope", 6, "renamed"), ("apply_rope", 13, "reordered"),
    ("sft_step", 1, "all three"), ("sft_step", 8, "renamed"), ("sft_step", 15, "padded"),
]


def disguise(code: str, how: str) -> str:
    for step in DISGUISES[how]:
        code = step(code)
    return code


def copies() -> list[tuple[str, str, int, str, str]]:
    """``[(student, exercise, index copied, disguise, cell)]`` of the planted copies."""
    found = []
    for n, (exercise, index, how) in enumerate(PLANTED):
        found.append((f"copy{n:02d}_of_s{index:02d}", exercise, index, how, disguise(cell(exercise, ANSWERS[exercise][index]), how)))
    return found


# ---------------------------------------------------------------------------------------------------
# the class on disk


def lesson_cells() -> dict[str, dict[str, dict[str, str]]]:
    """lesson → student → {exercise: cell}. A copier hands in only the copied exercise's cell (the
    lesson's other exercise cells keep the stub)."""
    table: dict[str, dict[str, dict[str, str]]] = {}
    for exercise, answers in ANSWERS.items():
        lesson = LESSON_OF[exercise]
        for i, answer in enumerate(answers):
            table.setdefault(lesson, {}).setdefault(f"s{i:02d}", {})[exercise] = cell(exercise, answer)
    for student, exercise, _, _, code in copies():
        table.setdefault(LESSON_OF[exercise], {}).setdefault(student, {})[exercise] = code
    return table


def submission(lesson: str, cells: dict[str, str]) -> dict:
    nb = copy.deepcopy(json.loads((NOTEBOOKS_DIR / f"{lesson}.ipynb").read_text()))
    for c in nb["cells"]:
        gid = c.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if gid in cells:
            c["source"] = cells[gid]
    return nb


def build_class(root: Path, lessons: tuple[str, ...] | None = None) -> Path:
    """Write the class under ``root/submissions``; returns that folder."""
    subs = Path(root) / "submissions"
    for lesson, students in lesson_cells().items():
        if lessons is not None and lesson not in lessons:
            continue
        for student, cells in students.items():
            (subs / student).mkdir(parents=True, exist_ok=True)
            (subs / student / f"{lesson}.ipynb").write_text(json.dumps(submission(lesson, cells)))
    return subs


def planted_pairs() -> set[tuple[str, frozenset]]:
    """``{(exercise, {copier, original})}``: the pairs a similarity report should show."""
    return {(exercise, frozenset((student, f"s{index:02d}"))) for student, exercise, index, _, _ in copies()}
