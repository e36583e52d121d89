"""The course machinery around the paper's parts: what the lessons and the drill use, not what DPO is.

* the timed 60-minute mock interview of lesson 10: ``drill`` (the session a candidate starts), ``drill_clock``
  (its blocks and clock), ``scorecard`` (what it scores and shows), ``drill_history`` (saved attempts) and
  ``red_flags`` (the one scanner of written explanations);
* its interview papers, each a record and none a special case: ``variants`` (the registry, DPO among five),
  ``variant_types`` (what a record holds), ``variants_with_reference`` (DPO, IPO, cDPO) and
  ``variants_reference_free`` (SimPO, ORPO), ``variant_sanity`` (each paper's sanity plan) and ``diagnosis_round``
  (the optional fifth block: reading shipped runs);
* ``exercises`` (module mode: every exercise's stub, made from its record), ``notebook`` (the helpers a lesson's
  cells call) and ``environment`` (the setup cell's check);
* ``studies`` (the shipped studies lessons 08 and 09 read) and ``sft_checkpoint`` (re-making the shipped SFT model:
  ``python -m rlhf_core.course.sft_checkpoint``).

The paper's parts live one level up, in :mod:`rlhf_core`; nothing there imports this package.
"""
