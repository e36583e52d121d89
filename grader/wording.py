"""Verdicts kept whole: one line of text, and a short form that ends on a sentence (or a word).

A check's verdict says what was expected, what came back and the likely mistake, often in two or
three sentences. The grader keeps it whole wherever there is room — the per-check results
(``OUT/results/…``, hence the feedback page), ``python -m grader check`` and ``verdict_table()`` —
and uses :func:`short_form` where there is not: the ``message`` column of ``grades.csv`` and the
progress log of ``grader autograde`` (the CSV's short form, wrapped under its row with an indent, never cut:
:func:`grader.autograde.log_row`). A short form is a prefix of the text that ends on a
sentence (``.``, ``!`` or ``?`` before a space), or, where the first sentence alone is too long, on
a word followed by ``…``. No verdict is cut inside a word. :func:`clip` bounds text that comes from
a submission (an exception message) the same way, at a word, so a record stays small.

**The diagnosis before the numbers.** A check's verdict reads "✗ title: … expected X, got Y. <the likely
mistake>" (:func:`rlhf_core.checks.verdicts.verdict`): where X and Y are long arrays, a plain prefix would keep
the numbers and lose the sentence that names the mistake. So when a text that holds such a values sentence
("expected …, got ….", followed by more text) does not fit, its short form is the text before it, then the
sentences after it (the diagnosis) as far as they fit, then the values sentence: whole if it fits, else with each
``[…]`` list cut to its first number, else left out (and where not even the diagnosis' first sentence fits, the
plain prefix). Such a short form is not a prefix of the text, but every
sentence in it is one of the text's (the values sentence perhaps with fewer numbers), and none is cut.
"""

from __future__ import annotations

import re

__all__ = ["CRASH_LIMIT", "CSV_MESSAGE_LIMIT", "LOG_MESSAGE_LIMIT", "VERDICT_LIMIT", "clip", "one_line", "short_form",
           "numbers_last"]

#: Characters of a message in ``grades.csv`` (a spreadsheet cell): the short form of the full message.
CSV_MESSAGE_LIMIT = 300
#: Characters of a message on one line where a caller has no room to wrap it (``grader autograde``'s log wraps instead).
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
# A check's values sentence, "expected X, got Y." or "expected X.": X and Y hold no sentence end and no " — "
# (which introduces a diagnosis in a verdict), and the sentence ends at a "." before white space.
_PART = r"(?:(?![.!?]\s| — ).)+?"
_VALUES = re.compile(rf"(?<!\S)expected {_PART}(?:, got {_PART})?\.(?=\s)")
_LIST = re.compile(r"\[([^\[\]]*?),[^\[\]]*\]")


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


def _prefix(text: str, limit: int) -> str:
    """The longest prefix of ``text`` that ends a sentence and fits; else a prefix that ends on a word, then ``…``."""
    if len(text) <= limit:
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, limit + 1) if m.end() <= limit]
    if ends:
        return text[:ends[-1]]
    return _word_cut(text, limit)


def numbers_last(text) -> tuple[str, str] | None:
    """``(text without its values sentence, the values sentence)`` when ``text`` (on one line) has a values
    sentence ("expected X, got Y.") followed by more text, the diagnosis; else None."""
    text = one_line(text)
    found = _VALUES.search(text)
    if found is None or not text[found.end():].strip():
        return None
    return (text[:found.start()] + text[found.end():].lstrip()).rstrip(), found.group(0)


def short_form(text, limit: int = CSV_MESSAGE_LIMIT) -> str:
    """``text`` on one line if it fits in ``limit`` characters; else its longest prefix that ends a
    sentence and fits; else (the first sentence alone is longer) a prefix that ends on a word, then ``…``.
    A verdict's values sentence followed by its diagnosis gives way first: the diagnosis is kept, the numbers
    come after it as far as they fit (see the module's docstring)."""
    text = one_line(text)
    if len(text) <= limit:
        return text
    split = numbers_last(text)
    if split is None:
        return _prefix(text, limit)
    rest, values = split
    kept = _prefix(rest, limit)
    if kept.endswith(ELLIPSIS):         # not even the diagnosis' first sentence fits: the plain short form
        return _prefix(text, limit)
    for numbers in (values, _LIST.sub(lambda m: f"[{m.group(1)}, {ELLIPSIS}]", values)):
        if len(kept) + 1 + len(numbers) <= limit:
            return f"{kept} {numbers}"
    return kept


def clip(text, limit: int = VERDICT_LIMIT) -> str:
    """``text`` on one line, bounded to ``limit`` characters at a word (with ``…``) when longer."""
    text = one_line(text)
    return text if len(text) <= limit else _word_cut(text, limit)
