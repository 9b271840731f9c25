"""The built wheel works on its own (issue 15, point 18): built from a copy of the source,
installed into a fresh virtual environment outside the checkout, it serves the demo (so
its migrations, templates, static files, price table and demo server are inside it),
test-fires, and shows the dashboard; and the core alone is enough for the HTTP SDK.

No network: the fresh environments get their dependencies from this test run's own
environment through a ``.pth`` line (only the core's few packages, for the SDK check),
never the checkout's ``src``.
"""

from __future__ import annotations

import json
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.newcomer.serving import clean_env, serve

ROOT = Path(__file__).resolve().parents[2]

CORE_MODULES = (
    "httpx",
    "httpx_sse",
    "httpcore",
    "h11",
    "idna",
    "certifi",
    "sniffio",
    "anyio",
    "pydantic",
    "pydantic_core",
    "typing_extensions.py",
    "typing_inspection",
    "annotated_types",
    "click",
    "rich",
    "markdown_it",
    "mdurl",
    "pygments",
    "platformdirs",
)
"""The core: what ``cairn.Client`` over HTTP needs (httpx, httpx-sse, anyio, pydantic) and
what the command needs to start (click, rich, platformdirs), with their own dependencies."""


def _build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    dist = tmp_path / "dist"
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(dist),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = dist.glob("cairn_runtime-*.whl")
    return wheel


def _venv(path: Path, wheel: Path, dependencies: list[Path]) -> Path:
    """A fresh environment with the wheel installed and ``dependencies`` importable."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    python = path / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stderr
    (purelib,) = (path / "lib").glob("python3*/site-packages")
    (purelib / "_test_dependencies.pth").write_text("".join(f"{d}\n" for d in dependencies))
    return python


@pytest.mark.slow
def test_the_wheel_installed_elsewhere_serves_the_demo_and_test_fires(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    for packaged in (
        "cairn/data/prices.json",
        "cairn/web/templates/runs.html",
        "cairn/web/static/cairn.css",
        "cairn/store/migrations/env.py",
        "cairn/store/migrations/versions/0001_ledger_tables.py",
        "cairn/demo/orders_server.py",
        "cairn/py.typed",
    ):
        assert packaged in names, f"{packaged} is not in the wheel"

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    python = _venv(outside / "venv", wheel, [Path(p) for p in site.getsitepackages()])
    where = subprocess.run(
        [str(python), "-c", "import cairn; print(cairn.__file__)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=outside,
    )
    assert where.stdout.startswith(str(outside / "venv")), where.stdout

    home = outside / "home"
    env = clean_env(home) | {"PATH": f"{outside / 'venv' / 'bin'}:/usr/bin:/bin"}
    cairn = str(outside / "venv" / "bin" / "cairn")
    version = subprocess.run(
        [cairn, "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=outside,
    )
    assert "0.1.0" in version.stdout, version.stderr
    with serve(home, "--demo", "--local-login", env=env, within_s=180, command=cairn) as server:
        fired = subprocess.run(
            [
                cairn,
                "agent",
                "test",
                "support",
                "--event-payload",
                '{"order_id": "A-1001"}',
                "--json",
            ],
            env=env | {"CAIRN_URL": server.url, "CAIRN_SANDBOX": "demo"},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=outside,
        )
        assert fired.returncode == 0, fired.stderr
        run = json.loads(fired.stdout)
        assert run["status"] == "succeeded" and run["outcome"] == "acted"
        assert run["tool_calls"][0]["name"] == "orders_lookup_order"
        page = httpx.get(f"{server.url}/runs", timeout=30)
        assert page.status_code == 200 and run["run_id"] in page.text
        assert httpx.get(f"{server.url}/static/cairn.css", timeout=30).status_code == 200
        assert httpx.get(f"{server.url}/docs", timeout=30).status_code == 200
    assert (home / "cairn.db").exists(), "the migrations ran from the wheel"


@pytest.mark.slow
def test_the_core_alone_is_enough_for_the_http_sdk(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    core = tmp_path / "core-deps"
    core.mkdir()
    (packages,) = [Path(p) for p in site.getsitepackages()]
    for name in CORE_MODULES:
        (core / name).symlink_to(packages / name)
    python = _venv(tmp_path / "sdk-venv", wheel, [core])
    missing = subprocess.run(
        [str(python), "-c", "import sqlalchemy"], capture_output=True, timeout=60, check=False
    )
    assert missing.returncode != 0, "the SDK environment must not have the server's deps"

    home = tmp_path / "home"
    with serve(home) as server:
        token = next((home / "local-keys").rglob("default")).read_text().strip()
        code = (
            "import sys, cairn\n"
            "with cairn.Client(sys.argv[1], api_key=sys.argv[2]) as client:\n"
            "    client.agents.create('hello', 'You greet.')\n"
            "    run = client.agents.test('hello', event_payload={'name': 'Ada'})\n"
            "    print(run.status)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('sqlalchemy', 'fastapi', 'mcp', 'alembic')))\n"
        )
        used = subprocess.run(
            [str(python), "-c", code, server.url, token],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            cwd=tmp_path,
            env=clean_env(tmp_path / "sdk-home"),
        )
        assert used.returncode == 0, used.stderr
        assert used.stdout.split() == ["succeeded", "[]"]
    local = subprocess.run(
        [str(tmp_path / "sdk-venv" / "bin" / "cairn"), "agent", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(tmp_path / "sdk-home"),
    )
    assert local.returncode == 2, local.stderr
    assert "pip install 'cairn-runtime[server]'" in local.stderr
    assert local.stderr.count("\n") == 1
