"""grader — release, self-check and autograde the course notebooks (``python -m grader …``).

This package is filled in by the notebook issues (``release``) and the grading issue (``check``,
``autograde``). The verdict logic it will use already lives in :mod:`rlhf_core.checking`: a
candidate is *probed* into plain numbers inside the submission's kernel and *judged* elsewhere.
"""
