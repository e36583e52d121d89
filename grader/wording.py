"""Verdicts kept whole: one line of text, and a short form that ends on a sentence (or a word).

A check's verdict says what was expected, what came back and the likely mistake, often in two or
three sentences. The grader keeps it whole wherever there is room — the per-check results
(``OUT/results/…``, hence the feedback page), ``python -m grader check`` and ``verdict_table()`` —
and uses :func:`short_form` where there is not: the ``message`` column of ``grades.csv`` and the
one-line progress log of ``grader autograde``. A short form is a prefix of the text that ends on a
sentence (``.``, ``!`` or ``?`` before a space), or, where the first sentence alone is too long, on
a word followed by ``…``. No verdict is cut inside a word. :func:`clip` bounds text that comes from
a submission (an exception message) the same way, at a word, so a record stays small.
"""

from __future__ import annotations

import re

__all__ = ["CRASH_LIMIT", "CSV_MESSAGE_LIMIT", "LOG_MESSAGE_LIMIT", "VERDICT_LIMIT", "clip", "one_line", "short_form"]

#: Characters of a message in ``grades.csv`` (a spreadsheet cell): the short form of the full message.
CSV_MESSAGE_LIMIT = 300
#: Characters of a message in ``grader autograde``'s progress line.
LOG_MESSAGE_LIMIT = 100
#: Characters a grading kernel records of the exception a learner's function raised inside a check.
CRASH_LIMIT = 300
#: A bound on a whole verdict, only ever reached by text a submission controls (never by a check's own words).
VERDICT_LIMIT = 4000

ELLIPSIS = "…"
# A sentence ends at . ! ? (optionally closed by a quote or bracket) followed by white space, except after
# the common abbreviations a verdict uses mid-sentence.
_SENTENCE_END = re.compile(r"(?<!\be\.g)(?<!\bi\.e)(?<!\betc)(?<!\bvs)(?<!\bcf)[.!?][\"')\]]?(?=\s)")
_TRAILING = " \t,;:—–-(/"


def one_line(text) -> str:
    """``text`` on one line: runs of white space (newlines included) become one space, ends stripped."""
    return " ".join(str(text).split())


def _word_cut(text: str, limit: int) -> str:
    """The longest prefix of ``text`` of at most ``limit - 1`` characters that is followed by white space
    (so never inside a word or a number), trailing punctuation dropped, then ``…``."""
    room = max(1, limit - len(ELLIPSIS))
    cut = next((i for i in range(room, 0, -1) if text[i].isspace()), 0)
    if cut == 0:            # one "word" longer than the room (a hash, a path): nothing better than a hard cut
        cut = room
    return (text[:cut].rstrip(_TRAILING) or text[:cut]) + ELLIPSIS


def short_form(text, limit: int = CSV_MESSAGE_LIMIT) -> str:
    """``text`` on one line if it fits in ``limit`` characters; else its longest prefix that ends a
    sentence and fits; else (the first sentence alone is longer) a prefix that ends on a word, then ``…``."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, limit + 1) if m.end() <= limit]
    if ends:
        return text[:ends[-1]]
    return _word_cut(text, limit)


def clip(text, limit: int = VERDICT_LIMIT) -> str:
    """``text`` on one line, bounded to ``limit`` characters at a word (with ``…``) when longer."""
    text = one_line(text)
    return text if len(text) <= limit else _word_cut(text, limit)
