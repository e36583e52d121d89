"""One course secret for every OUT folder: made once (loudly), exported to TAs and imported there, found where an
instructor would look; every OUT of the course gets the same variants and seeds from it; an OUT graded by an earlier
version keeps its own ``OUT/.secret``; and an OUT graded with one secret refuses a run with another."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from grader.autograde import autograde
from grader.course import load_lessons
from grader.plan import SecretSeeds, make_plan
from grader.secret import SECRET_ENV, course_secret_path, fingerprint, main, read_secret, resolve_secret

LESSON10 = "10_mock_interview"


@pytest.fixture
def course_secret(tmp_path, monkeypatch) -> Path:
    """Where this test's course secret lives (through $DPO_GRADER_SECRET_FILE): nothing there yet."""
    path = tmp_path / "config" / "course.secret"
    monkeypatch.setenv(SECRET_ENV, str(path))
    return path


def test_the_course_secret_lives_where_the_instructor_points_else_in_the_users_config(tmp_path, monkeypatch):
    monkeypatch.delenv(SECRET_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert course_secret_path() == tmp_path / "xdg" / "dpo-grader" / "secret"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert course_secret_path() == Path.home() / ".config" / "dpo-grader" / "secret"
    monkeypatch.setenv(SECRET_ENV, str(tmp_path / "shared.secret"))
    assert course_secret_path() == tmp_path / "shared.secret"
    assert course_secret_path(tmp_path / "given") == tmp_path / "given"          # --secret FILE first


def test_init_export_import_hand_the_same_secret_to_a_ta(tmp_path, course_secret, capsys):
    assert main("init") == 0
    made = capsys.readouterr().err
    assert "NEW COURSE SECRET" in made and str(course_secret) in made
    assert stat.S_IMODE(course_secret.stat().st_mode) == 0o600
    key = read_secret(course_secret)
    assert main("init") == 0 and "already exists" in capsys.readouterr().err and read_secret(course_secret) == key

    assert main("export") == 0
    exported = capsys.readouterr().out
    (tmp_path / "to-the-ta").write_text(exported)
    ta = tmp_path / "ta" / "secret"
    assert main("import", ta, str(tmp_path / "to-the-ta")) == 0
    assert read_secret(ta) == key and stat.S_IMODE(ta.stat().st_mode) == 0o600
    assert fingerprint(key) in capsys.readouterr().err

    (tmp_path / "another").write_text("ab" * 32)
    assert main("import", ta, str(tmp_path / "another")) == 1 and read_secret(ta) == key       # not replaced silently
    assert "--force" in capsys.readouterr().err
    assert main("import", ta, str(tmp_path / "another"), force=True) == 0 and read_secret(ta) == b"ab" * 32
    (tmp_path / "junk").write_text("not a secret")
    assert main("import", ta, str(tmp_path / "junk")) == 2


def _lesson10_class(submissions: Path, students: int = 12) -> None:
    for i in range(students):
        (submissions / f"s{i:02d}").mkdir(parents=True)
        (submissions / f"s{i:02d}" / f"{LESSON10}.ipynb").write_text("{}")


def test_every_out_folder_of_the_course_gets_the_same_variants_and_seeds(tmp_path, course_secret):
    lessons = {LESSON10: load_lessons()[LESSON10]}
    _lesson10_class(tmp_path / "subs")
    said = []
    keys = [resolve_secret(tmp_path / out, log=said.append) for out in ("out-a", "out-b", "out-c")]
    assert sum("NEW COURSE SECRET" in line for line in said) == 1            # made once, loudly, then used
    plans = [make_plan(tmp_path / "subs", tmp_path / out, lessons, seeds=SecretSeeds(k.key), log=said.append)
             for out, k in zip(("out-a", "out-b", "out-c"), keys)]
    variants = [[item.variant for item in plan.items] for plan in plans]
    assert variants[0] == variants[1] == variants[2] and len(set(variants[0])) > 1
    seeds = [plan.seeds.for_lesson("s00", lessons[LESSON10]) for plan in plans]
    assert seeds[0] == seeds[1] == seeds[2]
    assert not (tmp_path / "out-a" / ".secret").exists()                    # no copy of the secret in OUT


def test_an_out_graded_by_an_earlier_version_keeps_its_own_secret(tmp_path, course_secret):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".secret").write_text("cd" * 32)                                 # what earlier versions made per OUT
    said = []
    assert resolve_secret(out, log=said.append).key == b"cd" * 32
    assert "secret import" in said[-1] and not course_secret.exists()       # says how to make it the course's
    course_secret.parent.mkdir(parents=True)
    course_secret.write_text("ef" * 32)
    assert resolve_secret(out, log=said.append).key == b"cd" * 32 and "keeps its own" in said[-1]
    assert resolve_secret(tmp_path / "new-out", log=said.append).key == b"ef" * 32


def test_a_run_with_another_secret_into_a_graded_out_is_refused(tmp_path, course_secret):
    _lesson10_class(tmp_path / "subs", students=1)
    out = tmp_path / "out"
    out.mkdir()
    (out / "run.json").write_text(json.dumps({"submissions": str(tmp_path / "subs"), "secret": fingerprint(b"ab" * 32)}))
    said = []
    assert autograde(tmp_path / "subs", out, gradebook=False, report=False, log=said.append) == 2
    assert "mix two secrets" in said[-1] and "secret import" in said[-1]
    assert not (out / "results").exists()


def test_seeds_need_the_key_not_an_out_folder(tmp_path):
    with pytest.raises(TypeError):
        SecretSeeds(tmp_path)
