"""The course secret: one key per course, from which every hidden test's seeds and every student's drill variant of
lesson 10 are derived (:class:`grader.plan.SecretSeeds`). Whoever grades, on whichever machine, into whichever OUT
folder, a student is graded on the same variant and the same hidden inputs — as long as everyone uses this one file.

``python -m grader secret init|export|import``::

    python -m grader secret init                  # the instructor, once per course: make the course secret
    python -m grader secret export > course.key   # hand it to each TA, privately (it is the answer key's key)
    python -m grader secret import course.key     # on a TA's machine: use the course's secret from now on

**Where it lives**, the first that applies: ``--secret FILE`` (of ``autograde``, ``variants`` and ``secret``);
``$DPO_GRADER_SECRET_FILE`` (a shared, read-protected file on a course server, say); else
``$XDG_CONFIG_HOME/dpo-grader/secret``, by default ``~/.config/dpo-grader/secret``. It is 64 hex characters on one
line, mode 0600, outside every OUT folder (and out of every kernel's reach). ``autograde`` and ``variants`` make one
when there is none, and say so loudly: a TA who forgot ``secret import`` sees it at once.

**OUT folders.** Every run records the secret's fingerprint (not the secret) in ``OUT/run.json``; a run with another
secret into that OUT is refused (it would grade some notebooks on other seeds and variants than the rest). An OUT
graded by an earlier version of the grader holds its own secret in ``OUT/.secret``: that folder keeps using it (so
its variants and seeds stay as they were), and the run says so; ``python -m grader secret import OUT/.secret`` makes
it the course's, so that new OUT folders and ``grader variants`` agree with it. New OUT folders get no ``.secret``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SECRET_ENV", "LEGACY_FILE", "Secret", "course_secret_path", "fingerprint", "read_secret", "resolve_secret",
           "recorded_fingerprint", "main"]

SECRET_ENV = "DPO_GRADER_SECRET_FILE"
LEGACY_FILE = ".secret"         # an OUT folder's own secret, as versions before the course secret made it
_FORMAT = re.compile(r"^[0-9a-f]{32,128}$")


@dataclass(frozen=True)
class Secret:
    """A key and where it came from (``legacy``: an OUT folder's own ``.secret``)."""

    key: bytes
    path: Path
    legacy: bool = False

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.key)


def course_secret_path(explicit: Path | None = None) -> Path:
    """Where the course secret lives: ``explicit`` (``--secret``), else ``$DPO_GRADER_SECRET_FILE``, else
    ``$XDG_CONFIG_HOME/dpo-grader/secret`` (``~/.config/dpo-grader/secret``)."""
    if explicit is not None:
        return Path(explicit).expanduser()
    if os.environ.get(SECRET_ENV):
        return Path(os.environ[SECRET_ENV]).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "dpo-grader" / "secret"


def fingerprint(key: bytes) -> str:
    """A short name for a key that reveals nothing of it (what OUT/run.json and the messages show)."""
    return hmac.new(key, b"dpo-grader secret fingerprint", hashlib.sha256).hexdigest()[:12]


def read_secret(path: Path) -> bytes:
    """The key in ``path``; ValueError when the file holds no secret of this grader."""
    text = Path(path).read_text().strip()
    if not _FORMAT.match(text):
        raise ValueError(f"{path} does not hold a grader secret (expected 32 to 128 hex characters on one line)")
    return text.encode()


def _write_secret(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")
    os.replace(tmp, path)


def _announce_new(path: Path, key: bytes, log) -> None:
    log(f"NEW COURSE SECRET made at {path} (fingerprint {fingerprint(key)}). Every hidden test's seeds and every "
        f"student's lesson 10 variant derive from it: keep it, back it up, and give the same file to everyone who "
        f"grades (`python -m grader secret export > FILE`, then `python -m grader secret import FILE`). If the course "
        f"already has a secret, stop here and import it instead.")


def _course_secret(explicit: Path | None, log, create: bool) -> Secret:
    path = course_secret_path(explicit)
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"no course secret at {path}: `python -m grader secret init` makes one")
        _write_secret(path, secrets.token_hex(32))
        _announce_new(path, read_secret(path), log)
    return Secret(read_secret(path), path)


def resolve_secret(out: Path | None = None, explicit: Path | None = None, log=print, create: bool = True) -> Secret:
    """The secret that grades ``out``: its own ``OUT/.secret`` when an earlier version made one (said in ``log``),
    else the course secret (made, loudly, when there is none and ``create``). ValueError for an unreadable secret."""
    legacy = Path(out) / LEGACY_FILE if out is not None else None
    if legacy is not None and legacy.is_file():
        found = Secret(read_secret(legacy), legacy, legacy=True)
        course = course_secret_path(explicit)
        other = read_secret(course) if course.is_file() else None
        if other is not None and other != found.key:
            log(f"note: {out} was graded with its own secret ({legacy}, fingerprint {found.fingerprint}), not the course "
                f"secret at {course} ({fingerprint(other)}); it keeps its own, so that its seeds and variants stay as they were")
        elif other is None:
            log(f"note: {out} keeps the secret an earlier version made for it ({legacy}); `python -m grader secret import "
                f"{legacy}` makes it the course secret, so that other OUT folders and `grader variants` agree with it")
        return found
    return _course_secret(explicit, log, create)


def recorded_fingerprint(out: Path) -> str | None:
    """The fingerprint of the secret ``out`` was graded with, as ``OUT/run.json`` records it (None: not recorded)."""
    try:
        data = json.loads((Path(out) / "run.json").read_text())
    except (OSError, ValueError):
        return None
    value = data.get("secret") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def main(action: str, explicit: Path | None = None, source: str | None = None, force: bool = False) -> int:
    """``grader secret init|export|import``; messages go to stderr (``export`` prints the secret alone on stdout)."""
    say = lambda message: print(message, file=sys.stderr)   # noqa: E731
    path = course_secret_path(explicit)
    try:
        if action == "init":
            if path.exists():
                say(f"the course secret already exists at {path} (fingerprint {fingerprint(read_secret(path))}); kept")
                return 0
            _course_secret(explicit, say, create=True)
            return 0
        if action == "export":
            if not path.exists():
                say(f"no course secret at {path}: `python -m grader secret init` makes one, `secret import FILE` takes one")
                return 1
            key = read_secret(path)
            print(key.decode())
            say(f"the course secret of {path} (fingerprint {fingerprint(key)}): give it only to those who grade")
            return 0
        if action == "import":
            text = sys.stdin.read() if source in (None, "-") else Path(source).read_text()
            if not _FORMAT.match(text.strip()):
                say(f"{source or 'stdin'} does not hold a grader secret (expected 32 to 128 hex characters on one line)")
                return 2
            key = text.strip().encode()
            if path.exists():
                current = read_secret(path)
                if current == key:
                    say(f"{path} already holds this secret (fingerprint {fingerprint(key)})")
                    return 0
                if not force:
                    say(f"{path} holds another secret (fingerprint {fingerprint(current)}); replacing it changes every "
                        f"student's variant and seeds for new OUT folders: add --force if that is what you want")
                    return 1
            _write_secret(path, key.decode())
            say(f"the course secret is now {path} (fingerprint {fingerprint(key)})")
            return 0
    except (OSError, ValueError) as exc:
        say(f"error: {exc}")
        return 2
    say(f"unknown action {action!r}: init, export or import")
    return 2
