"""Where a submission's kernel runs: a bubblewrap sandbox when the machine allows it, else a plain kernel.

The sandbox (root + ``bwrap`` + cgroup v1 or v2) gives each kernel

* no network (a private network namespace: not even the host's loopback),
* a private PID namespace that dies with the grader (``--die-with-parent``),
* a read-only view of only the Python installation, the virtual environment and ``rlhf_core`` —
  not ``solutions/``, not the gradebook, not OUT — and one writable scratch directory; when the
  grader withholds the lesson's references (:mod:`grader.withheld`), the withheld copy of
  ``rlhf_core`` is bound over the real one, whose files the kernel then cannot read,
* an unprivileged uid (65534) with no capabilities and ``no_new_privs``,
* a memory cap and a process cap (its own cgroup), and ``prlimit`` caps on open files and file size,
* kernel sockets as Unix domain sockets in the scratch directory (``transport = "ipc"``); a socket's path
  is limited (107 bytes on Linux, 103 on macOS), so :func:`scratch_root` moves the grader's scratch to ``/tmp``
  when the temp folder's own path is too long to hold them (a deep ``TMPDIR``, macOS's ``/var/folders/…``).

:func:`detect` says which of these the machine allows; the grader prints the result before grading
and writes it into every CSV row, so weaker isolation is never silent.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from rlhf_core.paths import LIBRARY_DIR

__all__ = ["Isolation", "detect", "Limits", "KernelSandbox", "scratch_root", "short_prefix", "sweep_dead_scratch", "OWNER",
           "kernel_name", "server_name"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
NOBODY = 65534
SOCKET_PATH_MAX = 100           # bytes: below Linux's 107 and macOS's 103, whatever the platform
SOCKETS = "ipc"                 # a kernel's sockets: <its scratch>/ipc-<port number>
SHORT_TEMP = Path("/tmp")


def kernel_name() -> str:
    """A new name for one graded notebook's run: its scratch folder and its cgroup."""
    return uuid.uuid4().hex[:12]


def server_name() -> str:
    """A new name for a warm kernel server (:mod:`grader.warm`): its scratch folder, below which its kernels' lie."""
    return f"server-{uuid.uuid4().hex[:10]}"


# the deepest socket below a run's scratch root: a kernel forked by a warm server, at a two-digit port number
DEEPEST_SOCKET = len(f"/{server_name()}/{kernel_name()}/{SOCKETS}-99")


def scratch_root(prefix: str, temp: str | None = None) -> Path:
    """A new scratch folder for a grading run (``prefix`` + random letters), in the temp folder ``temp`` (the
    system's, from ``TMPDIR``, by default) when the kernels' socket paths below it stay within
    :data:`SOCKET_PATH_MAX`; else in ``/tmp`` under :func:`short_prefix`'s name, which says whose temp folder it
    stands in for. A temp folder that deep is not an error: every kernel would otherwise fail to bind its sockets.

    The folder records its owner (:data:`OWNER`), and the scratch folders of the same prefix that a process which
    has since died left there are removed first (:func:`sweep_dead_scratch`)."""
    temp = temp or tempfile.gettempdir()
    if len(os.path.join(temp, prefix + "x" * 8).encode()) + DEEPEST_SOCKET <= SOCKET_PATH_MAX \
            or not os.access(SHORT_TEMP, os.W_OK | os.X_OK):
        folder, name = Path(temp), prefix
    else:
        folder, name = SHORT_TEMP, short_prefix(prefix, temp)
    sweep_dead_scratch(folder, name)
    scratch = Path(tempfile.mkdtemp(prefix=name, dir=folder))
    owner = scratch / OWNER
    owner.write_text(json.dumps(_this_process()))
    owner.chmod(0o444)
    return scratch


#: A scratch folder's owner: ``{"host", "pid", "started"}`` of the process that made it (read-only; kernels cannot
#: write the scratch root, only their own folders below it).
OWNER = ".owner.json"


def _started(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``; ``""`` where there is no ``/proc``),
    or None when there is no such process. With the pid, it names one process even after its pid is reused."""
    if Path("/proc/self/stat").exists():
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
        except FileNotFoundError:
            return None
        except (OSError, IndexError):
            return ""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except OSError:          # it exists, and is another user's
        pass
    return ""


def _this_process() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _started(os.getpid())}


def _dead(owner: dict) -> bool:
    """The owner is a process of this host that is gone (or whose pid now belongs to another process)."""
    if owner.get("host") != socket.gethostname() or not isinstance(owner.get("pid"), int):
        return False
    started = _started(owner["pid"])
    return started is None or bool(started and owner.get("started") and started != owner["started"])


def sweep_dead_scratch(folder: Path, prefix: str) -> list[Path]:
    """Remove the scratch folders ``folder/prefix*`` whose owner died without removing them (a Dask worker killed
    mid-notebook, a grader quit by a second Ctrl-C or SIGKILL); returns them. A folder with no readable owner
    record (being made, or made by an older version) or owned by a live process or another host is left alone."""
    removed = []
    try:
        candidates = [p for p in Path(folder).iterdir() if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink()]
    except OSError:
        return removed
    for scratch in candidates:
        try:
            owner = json.loads((scratch / OWNER).read_text())
        except (OSError, ValueError):
            continue
        if isinstance(owner, dict) and _dead(owner):
            shutil.rmtree(scratch, ignore_errors=True)
            removed.append(scratch)
    return removed


def short_prefix(prefix: str, temp: str) -> str:
    """The name :func:`scratch_root` gives, in ``/tmp``, to a scratch folder that belongs in the too-deep ``temp``."""
    return f"{prefix}{hashlib.sha256(os.fsencode(temp)).hexdigest()[:8]}-"


@dataclass
class Limits:
    cell_timeout: float = 120.0      # seconds per cell
    notebook_timeout: float = 300.0  # seconds per notebook, all cells together
    memory_mb: int = 1536            # the kernel's memory cap
    max_processes: int = 64          # processes and threads inside the sandbox
    max_output_bytes: int = 200_000  # text and image output kept per cell
    draw_figures: bool = False       # rasterise matplotlib figures (--figures); else each is a line of text


@dataclass
class Isolation:
    """What this machine allows. ``sandboxed`` only when every protection is there."""

    bwrap: str | None
    cgroup: str | None          # "v1", "v2" or None
    missing: list[str] = field(default_factory=list)

    @property
    def sandboxed(self) -> bool:
        return not self.missing

    def summary(self) -> str:
        if self.sandboxed:
            return "sandboxed (bwrap: no network, private pid/mount namespaces, read-only env, uid 65534; cgroup memory and process caps)"
        return "NOT sandboxed: " + "; ".join(self.missing)


def _bwrap_works(bwrap: str) -> bool:
    try:
        done = subprocess.run([bwrap, "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
                               "--die-with-parent", "--ro-bind", "/", "/", "true"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _cgroup_version() -> str | None:
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return "v2" if os.access(CGROUP_ROOT, os.W_OK) else None
    if (CGROUP_ROOT / "memory").is_dir() and (CGROUP_ROOT / "pids").is_dir():
        return "v1" if os.access(CGROUP_ROOT / "memory", os.W_OK) and os.access(CGROUP_ROOT / "pids", os.W_OK) else None
    return None


def detect(want_sandbox: bool = True) -> Isolation:
    """Probe the machine once: root, a working ``bwrap``, writable cgroups."""
    root = os.geteuid() == 0 if hasattr(os, "geteuid") else False
    bwrap = shutil.which("bwrap")
    iso = Isolation(bwrap=None, cgroup=None)
    if not want_sandbox:
        iso.missing.append("sandbox turned off (--no-sandbox): submissions run as you, with network and your files")
        return iso
    if bwrap and _bwrap_works(bwrap):
        iso.bwrap = bwrap
    else:
        iso.missing.append("no working bwrap (install the 'bubblewrap' package; needs root or user namespaces): "
                           "kernels see the network and your files")
    iso.cgroup = _cgroup_version() if root else None
    if iso.cgroup is None:
        iso.missing.append("no writable cgroup (needs root): no memory or process cap")
    return iso


def _python_roots() -> list[str]:
    """Read-only paths the kernel needs: the interpreter's installation and the environment."""
    paths = {sys.prefix, sys.base_prefix, sysconfig.get_paths()["stdlib"], os.path.dirname(os.path.realpath(sys.executable))}
    return sorted(p for p in paths if p and os.path.exists(p))


class KernelSandbox:
    """One kernel's jail: a scratch directory, a kernelspec that starts the kernel in it, a cgroup.

    ``library``, when given, is a folder holding a copy of ``rlhf_core`` for the kernel to import in
    place of the real one: bound over the real package under bwrap, first on ``PYTHONPATH`` without.
    """

    def __init__(self, iso: Isolation, limits: Limits, scratch: Path, name: str, library: Path | None = None):
        self.iso, self.limits, self.scratch, self.name = iso, limits, Path(scratch), name
        self.library = Path(library) if library is not None else None
        self.scratch.mkdir(parents=True, exist_ok=True)
        self.work = self.scratch / "work"            # the kernel's working directory
        self.sockets = self.scratch / SOCKETS        # the kernel's Unix sockets: this path + "-<port>"
        self.work.mkdir(exist_ok=True)
        self.cgroups: dict[str, Path] = {}
        if iso.cgroup == "v1":
            for controller in ("memory", "pids"):
                path = CGROUP_ROOT / controller / "dpo-grader" / name
                path.mkdir(parents=True, exist_ok=True)
                self.cgroups[controller] = path
            _write(self.cgroups["memory"] / "memory.limit_in_bytes", limits.memory_mb * 2**20)
            swap = self.cgroups["memory"] / "memory.memsw.limit_in_bytes"
            if swap.exists():
                _write(swap, limits.memory_mb * 2**20)
            _write(self.cgroups["pids"] / "pids.max", limits.max_processes)
        elif iso.cgroup == "v2":
            path = CGROUP_ROOT / "dpo-grader"
            path.mkdir(exist_ok=True)
            _write(path / "cgroup.subtree_control", "+memory +pids", quiet=True)
            path = path / name
            path.mkdir(exist_ok=True)
            _write(path / "memory.max", limits.memory_mb * 2**20)
            _write(path / "memory.swap.max", 0, quiet=True)
            _write(path / "pids.max", limits.max_processes)
            self.cgroups["v2"] = path
        if iso.bwrap:
            os.chmod(self.scratch, 0o777)
            os.chmod(self.work, 0o777)
        self.spec_dir = self.scratch / "kernelspec"
        (self.spec_dir / "dpo-grader").mkdir(parents=True, exist_ok=True)
        self.set_kernel_command(self.kernel_argv(), env={} if iso.bwrap else self.kernel_env())

    def set_kernel_command(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        """The kernelspec's command: what the kernel manager starts (and watches) as the kernel."""
        (self.spec_dir / "dpo-grader" / "kernel.json").write_text(json.dumps(
            {"argv": argv, "display_name": "DPO grader", "language": "python", "interrupt_mode": "message", "env": env or {}}))

    # ---- the kernel command
    def kernel_argv(self, command: list[str] | None = None, ro_files: dict[str, str] | None = None) -> list[str]:
        """The command that starts the kernel in this sandbox; ``command`` another program in its place (the
        kernel server of :mod:`grader.warm`), ``ro_files`` files to bind read-only into the sandbox (path → path)."""
        kernel = command or [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        caps = ["prlimit", "--nofile=256", f"--fsize={64 * 2**20}", "--core=0"]
        if not self.iso.bwrap:
            return [sys.executable, "-m", "grader.launch", *self._cgroup_args(), "--", *(caps if shutil.which("prlimit") else []), *kernel]
        binds = []
        for source, target in self.read_only_binds(ro_files):
            binds += ["--ro-bind", source, target]
        env = []
        for key, value in self.sandboxed_env().items():
            env += ["--setenv", key, value]
        sandbox = [self.iso.bwrap, "--clearenv", *env, "--unshare-all", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY),
                   "--cap-drop", "ALL", "--die-with-parent", "--new-session",
                   # private /tmp first, then the read-only binds on top: a checkout or venv under /tmp stays visible
                   "--tmpfs", "/tmp", "--tmpfs", "/var/tmp", *binds, "--proc", "/proc", "--dev", "/dev",
                   "--bind", str(self.scratch), str(self.scratch), "--chdir", str(self.work),
                   "--", "setpriv", "--no-new-privs", "--bounding-set=-all", "--", *caps, *kernel]
        return [sys.executable, "-m", "grader.launch", *self._cgroup_args(), "--", *sandbox]

    def read_only_binds(self, ro_files: dict[str, str] | None = None) -> list[tuple[str, str]]:
        """What the sandbox shows read-only, ``(path here, path inside)``: the Python installation, the venv, the
        system folders, ``rlhf_core`` (or the withheld copy over it), then ``ro_files``."""
        binds = [(path, path) for path in _python_roots()]
        binds += [(path, path) for path in ("/usr", "/bin", "/lib", "/lib64", "/etc", "/sbin") if os.path.exists(path)]
        real = str(LIBRARY_DIR)   # after those, so that it lies over any folder above it (a venv's site-packages)
        binds.append((str(self.library / "rlhf_core") if self.library else real, real))
        return binds + list((ro_files or {}).items())

    def kernel_env(self) -> dict[str, str]:
        env = {"HOME": str(self.work), "IPYTHONDIR": str(self.scratch / ".ipython"), "MPLCONFIGDIR": str(self.scratch / ".mpl"),
               "MPLBACKEND": "module://matplotlib_inline.backend_inline", "TQDM_DISABLE": "1",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "RLHF_TORCH_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
               "JUPYTER_PLATFORM_DIRS": "1", "TMPDIR": "/tmp" if self.iso.bwrap else str(self.scratch),
               "RLHF_DRILL_HISTORY": str(self.scratch / "drill")}   # lesson 10 saves the attempt: into scratch
        if self.library is not None and not self.iso.bwrap:   # no bind without bwrap: the copy comes first on the path
            env["PYTHONPATH"] = os.pathsep.join([str(self.library), *filter(None, [os.environ.get("PYTHONPATH")])])
        return env

    def sandboxed_env(self) -> dict[str, str]:
        """The whole environment of a kernel under bwrap (which clears the grader's)."""
        return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **self.kernel_env()}

    def _cgroup_args(self) -> list[str]:
        args = []
        for path in self.cgroups.values():
            args += ["--cgroup", str(path)]
        return args

    # ---- after the run
    def hit_memory_cap(self) -> bool:
        """Whether the kernel ran into its memory cap (the kernel was OOM-killed or allocation failed)."""
        if "memory" in self.cgroups:
            path = self.cgroups["memory"]
            counts = [_read(path / "memory.failcnt"), _read(path / "memory.memsw.failcnt")]
            oom = _read(path / "memory.oom_control") or ""
            counts += [line.split()[1] for line in oom.splitlines() if line.startswith("oom_kill ")]
            return any(c and c.strip().isdigit() and int(c) > 0 for c in counts)
        if "v2" in self.cgroups:
            events = _read(self.cgroups["v2"] / "memory.events") or ""
            return any(line.split()[0] in ("oom", "oom_kill", "max") and int(line.split()[1]) > 0
                       for line in events.splitlines() if len(line.split()) == 2)
        return False

    def kill_all(self) -> None:
        """SIGKILL every process left in the kernel's cgroup (a fork bomb, an orphan)."""
        for path in self.cgroups.values():
            procs = path / "cgroup.procs"
            for _ in range(50):
                pids = [int(p) for p in (_read(procs) or "").split()]
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass
                time.sleep(0.05)

    def cleanup(self) -> None:
        self.kill_all()
        for path in self.cgroups.values():
            for _ in range(20):
                try:
                    path.rmdir()
                    break
                except OSError:
                    time.sleep(0.05)
        shutil.rmtree(self.scratch, ignore_errors=True)


def _write(path: Path, value, quiet: bool = False) -> None:
    try:
        path.write_text(str(value))
    except OSError:
        if not quiet:
            raise


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None
