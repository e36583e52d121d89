"""grader — release, self-check and autograde the course notebooks (``python -m grader …``).

:mod:`grader.course` holds the course's facts (paths, lessons, ``lessons.json``) and imports no other
grader module; the commands build on it: :mod:`~grader.release`, :mod:`~grader.publish`,
:mod:`~grader.selfcheck` and :mod:`~grader.autograde` (planning, grading and results in
:mod:`~grader.plan`, :mod:`~grader.grading` and :mod:`~grader.results`; on Dask workers through
:mod:`~grader.cluster`), then what an instructor reads of a class: :mod:`~grader.report` and
:mod:`~grader.similarity`.
"""
