"""grader — release, self-check and autograde the course notebooks (``python -m grader …``, :mod:`grader.__main__`).

* The course's facts: :mod:`~grader.course` (paths, the lessons read from their texts ``solutions/NN_name.py``,
  ``lessons.json``) with :mod:`~grader.spec` (what each check cell probes); the other modules build on them.
* Authoring: :mod:`~grader.release` (the source and student notebooks built from the lesson texts),
  :mod:`~grader.setup_cell`, :mod:`~grader.publish`.
* Grading one notebook: :mod:`~grader.compose` (the notebook that runs: the learner's answers, found by
  :mod:`~grader.cell_match` even where their metadata was lost, the lesson's cells,
  a preamble and probe cells from :mod:`~grader.kernel_side`, whose program inside the kernel is
  :mod:`~grader.kernel_probe`), :mod:`~grader.execute` in the sandbox of :mod:`~grader.sandbox` (cold, or forked
  from a kernel server: :mod:`~grader.warm`, :mod:`~grader.kernel_server`), the lesson's references withheld
  (:mod:`~grader.withheld`, planned in :mod:`~grader.withheld_plan`, written by :mod:`~grader.withheld_rewrite`,
  standing in through :mod:`~grader.withheld_runtime`; :mod:`~grader.route_scan` looks for routes to an answer
  that remain), then :mod:`~grader.judge`, outside the kernel, and
  :mod:`~grader.grading`, which puts it together into a :class:`~grader.result.NotebookResult`
  (:mod:`~grader.result`: the typed result and its statuses).
* A class: :mod:`~grader.collect` (an LMS download into the layout), :mod:`~grader.secret` (the course secret every
  output folder shares), :mod:`~grader.autograde` (:mod:`~grader.plan` what to grade and regrade,
  :mod:`~grader.results` the files written, :mod:`~grader.gradebook` nbgrader's gradebook and the LMS table; on Dask
  workers through :mod:`~grader.cluster`), then what an instructor reads: :mod:`~grader.feedback`,
  :mod:`~grader.report` and :mod:`~grader.similarity` (on :mod:`~grader.fingerprints`).
* The learner's: :mod:`~grader.selfcheck` (``python -m grader check``, and the in-notebook verdict table), with
  :mod:`~grader.tamper_scan`'s warnings before handing in.
"""
