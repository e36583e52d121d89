"""``python -m grader collect INBOX --out SUBMISSIONS [--format auto|canvas|moodle|folders]``: hand-ins as they arrive,
turned into the layout autograde grades, ``SUBMISSIONS/<student>/<NN_name>.ipynb``.

It **copies** (``shutil.copy2``, the file's time kept): INBOX is never changed. It prints what it collected, what it
did with each set of duplicates, and every file it left out, one line each with the reason.

The shapes it reads (``--format auto``, the default, recognises each file by its own name; a named format only its own):

* **canvas** — "Download Submissions" gives one flat folder (a zip) in which Canvas renames every file
  ``<lastfirst>[_LATE]_<user id>_<submission id>_<file name as uploaded>``, the name lower-cased letters without
  spaces, ``LATE`` where the hand-in was late, and ``-<n>`` before the extension of a file re-uploaded under the same
  name (``smithbob_LATE_340934_208490284_02_bradley_terry_and_dpo_loss-1.ipynb``). The student is
  ``<lastfirst>_<user id>``; a late hand-in is said in its line. (Sources: mikewesthad/canvas-unzipper's README, whose
  example zip holds ``smithbob_340934_208490284_BobsWork.zip``; TimHanneman/Canvas_submission_sort, whose script drops
  a ``LATE`` second field and the ``-<n>`` Canvas appends to resubmitted files.)
* **moodle** — "Download all submissions" gives a folder per participant, ``<Full Name>_<participant id>_assignsubmission_file_/``
  holding the files as uploaded, or, with "Download submissions in folders" off, flat files
  ``<Full Name>_<participant id>_assignsubmission_file_<file name>``. The student is ``<Full_Name>_<participant id>``
  (spaces and other characters a folder name should not hold become ``_``). (Source: gondree/canvas-offline-grading's
  ``moodle_submissions.py``, which splits these names on ``_`` into name, id, ``assignsubmission``, ``file``, file name.)
* **folders** — a folder per student (its name is the student), with the notebooks in it or deeper
  (``alice/submission/02_….ipynb``).

Within a student's files, a notebook belongs to a lesson (the names of :func:`grader.course.load_lessons`) by its name
once the marks that tools add are taken off: Colab's ``Copy of `` in front, a browser's numbered duplicate
``02_… (1).ipynb`` or ``02_…(2).ipynb``, Canvas's ``-1``. A name that is no lesson's but starts with the two-digit
number of exactly one lesson is that lesson's (a renamed copy, as autograde would match it). Several files of one
student for one lesson are **duplicates**: the one with the highest number is taken (a browser numbers each new
download of the same name one higher, and Canvas each re-upload, so the highest number is the latest; mtimes are not
trusted first, since unzipping often gives every file the archive's time), and between equal numbers the newest file
(mtime); the others are listed as left out. A file already in SUBMISSIONS is replaced by the newly collected one.

Left out, each with its reason: files that are not notebooks, Jupyter's ``.ipynb_checkpoints`` and hidden files, macOS's
``__MACOSX`` metadata, notebooks of no lesson, and files in INBOX's top folder whose names no LMS gave (whose they are
cannot be told).

:func:`layout_problem` is autograde's check of its SUBMISSIONS folder: a folder autograde would not grade as handed in
(nothing in a student's folder, notebooks directly in it, a Moodle download's folders) is an error that says what
layout was expected and suggests this command.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FORMATS", "Found", "collect", "layout_problem", "lesson_of"]

FORMATS = ("auto", "canvas", "moodle", "folders")
EXPECTED = "SUBMISSIONS/<student>/<NN_name>.ipynb"

_CANVAS = re.compile(r"^(?P<name>[^_/]+?)(?P<late>_LATE)?_(?P<uid>\d+)_(?P<sid>\d+)_(?P<file>.+)$", re.I)
_MOODLE_FLAT = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_file_(?P<file>.+)$")
_MOODLE_FOLDER = re.compile(r"^(?P<name>.+?)_(?P<id>\d+)_assignsubmission_[a-z]+_?$")
_COPY_OF = re.compile(r"^(?:Copy of )+", re.I)
_BROWSER_NUMBER = re.compile(r"\s?\((?P<n>\d+)\)$")
_CANVAS_NUMBER = re.compile(r"-(?P<n>\d+)$")


@dataclass
class Found:
    """One file of INBOX: whose it is and which lesson (``lesson`` None: left out, ``reason`` says why)."""

    path: Path                 # the file in INBOX
    shown: str                 # its path relative to INBOX, for the messages
    student: str | None = None
    lesson: str | None = None
    number: int = 0            # the duplicate number a tool added to its name (0: none)
    notes: list[str] = field(default_factory=list)
    reason: str = ""


def _student(name: str, number: str) -> str:
    """A student folder's name: the LMS's name and number, with what a folder name should not hold made ``_``."""
    return re.sub(r"[^\w.@+-]+", "_", name.strip()).strip("_.") + f"_{number}"


def lesson_of(file_name: str, lessons) -> tuple[str | None, int, list[str]]:
    """The lesson a hand-in's file name is (None when none is), the duplicate number in the name (0: none), and what
    was taken off or matched, as notes."""
    stem, notes = file_name[:-len(".ipynb")], []
    bare = _COPY_OF.sub("", stem)
    if bare != stem:
        notes.append("Colab's 'Copy of' taken off")
    number = 0
    for pattern in (_BROWSER_NUMBER, _CANVAS_NUMBER):
        match = pattern.search(bare)
        if match and bare[:match.start()]:
            candidate = bare[:match.start()]
            if bare not in lessons and (candidate in lessons or _by_number(candidate, lessons)):
                number, bare = int(match.group("n")), candidate
                notes.append(f"duplicate number {number}")
                break
    if bare in lessons:
        return bare, number, notes
    matched = _by_number(bare, lessons)
    if matched:
        return matched, number, notes + [f"renamed (expected {matched}.ipynb)"]
    return None, number, notes


def _by_number(stem: str, lessons) -> str | None:
    number = stem[:2]
    matches = [name for name in lessons if number.isdigit() and name[:2] == number]
    return matches[0] if len(matches) == 1 else None


def _left_out(rel: Path) -> str | None:
    """Why a file is left out before its name is read, or None."""
    if "__MACOSX" in rel.parts:
        return "macOS archive metadata (__MACOSX)"
    if ".ipynb_checkpoints" in rel.parts:
        return "a checkpoint Jupyter keeps, not a hand-in"
    if any(part.startswith(".") for part in rel.parts):
        return "a hidden file"
    return None


def _read_inbox(inbox: Path, fmt: str, lessons) -> list[Found]:
    found = []
    for path in sorted(p for p in inbox.rglob("*") if p.is_file()):
        rel = path.relative_to(inbox)
        item = Found(path, rel.as_posix())
        found.append(item)
        reason = _left_out(rel)
        if reason:
            item.reason = reason
            continue
        file_name = _whose(item, rel, fmt)
        if item.student is None:
            continue
        if not file_name.lower().endswith(".ipynb"):
            item.reason = f"not a notebook ({Path(file_name).suffix or 'no extension'})"
            item.student = None
            continue
        item.lesson, item.number, notes = lesson_of(file_name[:-6] + ".ipynb", lessons)
        item.notes += notes
        if item.lesson is None:
            item.reason = f"{file_name!r} is the notebook of no lesson (the lessons are {_lesson_range(lessons)})"
    return found


def _whose(item: Found, rel: Path, fmt: str) -> str:
    """Set ``item.student`` (and the reason when it cannot be told); returns the file's name as handed in."""
    top, name = rel.parts[0], rel.name
    if len(rel.parts) > 1:
        match = _MOODLE_FOLDER.match(top) if fmt in ("auto", "moodle") else None
        if match:
            item.student = _student(match["name"], match["id"])
        elif fmt in ("auto", "folders"):
            item.student = top
        else:
            item.reason = ("in a folder not named by Moodle (<Full Name>_<id>_assignsubmission_file_)" if fmt == "moodle"
                           else "in a folder, which a Canvas download does not have")
            return name
        if len(rel.parts) > 2:
            item.notes.append(f"found in {'/'.join(rel.parts[1:-1])}/")
        return name
    if fmt in ("auto", "moodle"):
        match = _MOODLE_FLAT.match(name)
        if match:
            item.student = _student(match["name"], match["id"])
            return match["file"]
    if fmt in ("auto", "canvas"):
        match = _CANVAS.match(name)
        if match:
            item.student = _student(match["name"], match["uid"])
            if match["late"]:
                item.notes.append("LATE in Canvas")
            return match["file"]
    if not name.lower().endswith(".ipynb"):
        item.reason = f"not a notebook ({Path(name).suffix or 'no extension'})"
        return name
    expected = {"auto": "a Canvas or Moodle file name, or a folder per student", "canvas": "<lastfirst>[_LATE]_<user id>_<submission id>_<file>",
                "moodle": "<Full Name>_<id>_assignsubmission_file_<file>", "folders": "a folder per student"}[fmt]
    item.reason = f"whose it is cannot be told: directly in INBOX and not named as {expected}"
    return name


def _lesson_range(lessons) -> str:
    names = sorted(lessons)
    return f"{names[0]} … {names[-1]}" if len(names) > 2 else ", ".join(names)


def collect(inbox: Path, submissions: Path, *, fmt: str = "auto", lessons=None, log=print) -> int:
    """Copy INBOX's hand-ins into ``SUBMISSIONS/<student>/<lesson>.ipynb``; returns 0, 1 when nothing could be
    collected, 2 for a bad INBOX, SUBMISSIONS or format."""
    if lessons is None:       # only the names are needed: grader/lessons.json has them where solutions/ is not shipped
        from .course import load_lessons, read_lessons_json

        lessons = load_lessons() or read_lessons_json()
    inbox, submissions = Path(inbox).resolve(), Path(submissions).resolve()
    if fmt not in FORMATS:
        log(f"error: --format must be one of {', '.join(FORMATS)}, not {fmt!r}")
        return 2
    if not inbox.is_dir():
        log(f"error: {inbox} is not a folder (unzip the LMS's download first)")
        return 2
    if submissions == inbox or inbox in submissions.parents or submissions in inbox.parents:
        log("error: SUBMISSIONS and INBOX must be separate folders, neither inside the other")
        return 2
    found = _read_inbox(inbox, fmt, lessons)
    chosen: dict[tuple[str, str], list[Found]] = {}
    for item in found:
        if item.lesson and not item.reason:
            chosen.setdefault((item.student, item.lesson), []).append(item)
    taken, duplicates = [], []
    for key, items in sorted(chosen.items()):
        items.sort(key=lambda f: (f.number, f.path.stat().st_mtime, f.shown), reverse=True)
        taken.append(items[0])
        if len(items) > 1:
            rule = "highest duplicate number" if items[0].number > items[1].number else "newest file"
            duplicates.append(f"  {key[0]} {key[1]}: took {items[0].shown!r} ({rule}); left out "
                              + ", ".join(repr(i.shown) for i in items[1:]))
    for item in taken:
        target = submissions / item.student / f"{item.lesson}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        replaced = target.exists() and target.read_bytes() != item.path.read_bytes()
        shutil.copy2(item.path, target)
        notes = item.notes + (["replaced the copy already in SUBMISSIONS"] if replaced else [])
        log(f"  {item.student:<24} {item.lesson:<32} <- {item.shown}" + (f"  ({'; '.join(notes)})" if notes else ""))
    students = len({item.student for item in taken})
    log(f"collected {len(taken)} notebooks of {students} students from {inbox} into {submissions}")
    if duplicates:
        log(f"{len(duplicates)} duplicates (the latest taken):")
        for line in duplicates:
            log(line)
    ignored = [item for item in found if item.reason]
    if ignored:
        log(f"ignored {len(ignored)} files:")
        for item in ignored:
            log(f"  {item.shown}: {item.reason}")
    if not taken:
        log(f"error: nothing to grade was found in {inbox}; --format {fmt} reads "
            + ("Canvas and Moodle downloads and folders per student" if fmt == "auto" else f"{fmt} downloads only"))
        return 1
    log(f"next: python -m grader autograde {submissions} --out OUT")
    return 0


def layout_problem(submissions: Path) -> str | None:
    """Why autograde would grade nothing, or not every hand-in, in ``submissions`` (a sentence naming the layout
    expected and suggesting ``grader collect``), or None: no student folder holds a notebook; notebooks lie directly
    in it (an LMS's flat download), beside student folders or not; its folders are a Moodle download's."""
    submissions = Path(submissions)
    entries = [p for p in submissions.iterdir() if not p.name.startswith(".")]
    folders = [p for p in entries if p.is_dir()]
    flat = [p for p in entries if p.is_file() and p.suffix == ".ipynb"]
    moodle = [p for p in folders if _MOODLE_FOLDER.match(p.name)]
    gradable = any(p.is_file() and p.suffix == ".ipynb" and not p.name.startswith(".") for d in folders for p in d.iterdir())
    if gradable and not flat and not moodle:
        return None
    deeper = [p for d in folders for p in d.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts]
    if moodle:
        seen = (f"its folders are a Moodle download's ({moodle[0].name!r}), whose names are not the students' "
                "and whose notebooks keep their uploaded names")
    elif flat:
        seen = (f"{len(flat)} notebooks lie directly in it (e.g. {flat[0].name!r}), in no student's folder"
                + (", and would not be graded" if gradable else ""))
    elif deeper:
        seen = f"its {len(deeper)} notebooks lie deeper than a student's folder (e.g. {deeper[0].relative_to(submissions).as_posix()!r})"
    elif folders:
        seen = f"its {len(folders)} folders hold no notebook"
    else:
        seen = "it holds no student folder"
    return (f"{'not every hand-in' if gradable else 'nothing'} would be graded in {submissions}: {seen}. autograde expects one folder per student holding that "
            f"student's notebooks, {EXPECTED} (e.g. alice/02_bradley_terry_and_dpo_loss.ipynb); "
            "`python -m grader collect INBOX --out SUBMISSIONS` makes that layout from a Canvas or Moodle download, "
            "Colab's 'Copy of' files, numbered duplicates or nested folders")
