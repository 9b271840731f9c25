"""What every benchmark shares: summary statistics, verdicts, paths and a scratch Cairn app."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cairn.config import Settings
from cairn.services.app import App

REPO = Path(__file__).resolve().parent.parent

# Cairn settings a benchmark must not inherit from the shell that runs it: each benchmark
# works on its own scratch ledger, never on the user's.
_CAIRN_ENV = ("CAIRN_HOME", "CAIRN_DATABASE_URL", "CAIRN_SANDBOX", "CAIRN_SECRET_KEY")


class BenchError(Exception):
    """A benchmark could not measure what it claims (wrong rows, a failed process, …)."""


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary of wall-time samples, in milliseconds."""

    n: int
    median_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Stats:
        """Summarise samples given in seconds (at least one)."""
        if not seconds:
            raise BenchError("no samples to summarise")
        ms = [s * 1000.0 for s in seconds]
        p90 = statistics.quantiles(ms, n=10)[-1] if len(ms) > 1 else ms[0]
        return cls(len(ms), statistics.median(ms), p90, statistics.fmean(ms), min(ms))

    def line(self) -> str:
        """``median … ms, p90 … ms, mean … ms (n=…)``."""
        return (
            f"median {self.median_ms:8.3f} ms  p90 {self.p90_ms:8.3f} ms  "
            f"mean {self.mean_ms:8.3f} ms  (n={self.n})"
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """One target of the issue and how this run measured against it."""

    benchmark: str
    what: str
    ratio: float
    target: float

    @property
    def passed(self) -> bool:
        """Whether the measured ratio meets the target (lower is better)."""
        return self.ratio <= self.target

    def line(self) -> str:
        """``PASS/MISS  benchmark: what  ratio … (target <= …)``."""
        mark = "PASS" if self.passed else "MISS"
        return (
            f"{mark}  {self.benchmark}: {self.what}  "
            f"ratio {self.ratio:.3f} (target <= {self.target:.3f})"
        )


def header(title: str) -> None:
    """Print a section title."""
    print(f"\n=== {title} ===", flush=True)


def note(text: str) -> None:
    """Print an indented line of a section."""
    print(f"  {text}", flush=True)


def venv_script(name: str) -> Path:
    """A console script of the environment running the benchmarks (``cairn``, ``llm``)."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return here
    found = shutil.which(name)
    if found is None:
        raise BenchError(f"console script {name!r} not found next to {sys.executable} or on PATH")
    return Path(found)


def peers_dir() -> Path:
    """The shared peer programs: ``$CAIRN_PEERS_DIR`` or ``<repo>/../shared/peers``."""
    explicit = os.environ.get("CAIRN_PEERS_DIR")
    path = Path(explicit).expanduser() if explicit else REPO.parent / "shared" / "peers"
    if not path.is_dir():
        raise BenchError(f"peer directory {path} does not exist; set CAIRN_PEERS_DIR")
    return path


def clean_env(**overrides: str) -> dict[str, str]:
    """This process's environment without Cairn settings, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if k not in _CAIRN_ENV}
    env.update(overrides)
    return env


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory, removed afterwards (big ledgers must not pile up in /tmp)."""
    path = Path(tempfile.mkdtemp(prefix=f"cairn-bench-{prefix}-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def sqlite_url(home: Path) -> str:
    """The URL of the embedded ledger Cairn itself would use in ``home``."""
    return f"sqlite:///{home / 'cairn.db'}"


@contextmanager
def scratch_app(home: Path) -> Iterator[App]:
    """An ``App`` on a fresh SQLite ledger in ``home`` (migrated on first use), closed after."""
    app = App(Settings(home=home, database_url=sqlite_url(home)))
    try:
        yield app
    finally:
        app.close()


def time_process(
    argv: Sequence[str], env: Mapping[str, str], *, what: str, stdout: int | None = None
) -> float:
    """Wall time of one whole process, in seconds; raises ``BenchError`` if it fails."""
    started = time.perf_counter()
    done = subprocess.run(
        list(argv),
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL if stdout is None else stdout,
        stderr=subprocess.PIPE,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(
            f"{what} exited {done.returncode}: {done.stderr.decode(errors='replace').strip()}"
        )
    return elapsed


def free_port(host: str = "127.0.0.1") -> int:
    """A loopback port that was free a moment ago, for a server the bench starts."""
    import socket

    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port
