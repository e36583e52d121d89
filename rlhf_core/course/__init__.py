"""The course machinery around the paper's parts: what the lessons and the drill use, not what DPO is.

``drill`` (the timed 60-minute mock interview of lesson 10) with its interview ``variants`` (IPO, cDPO,
SimPO, ORPO beside DPO), their ``variant_sanity`` plans and the ``diagnosis_round``; ``exercises`` (every
exercise as a stub, for module mode); ``notebook`` (the helpers a lesson's cells call) and ``environment``
(the setup cell's check); ``studies`` (the shipped studies lessons 08 and 09 read) and ``sft_checkpoint``
(re-making the shipped SFT model: ``python -m rlhf_core.course.sft_checkpoint``). The paper's parts live
one level up, in :mod:`rlhf_core`.
"""
