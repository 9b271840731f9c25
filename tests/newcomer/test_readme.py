"""The README as written: every shell block, in order, against a fresh ``CAIRN_HOME`` and a
``cairn serve --demo`` the test starts (what ``make run`` does), in a scratch directory.

The one substitution: the README's ``127.0.0.1:8765`` is the test server's port.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.newcomer.readme_blocks import blocks, script
from tests.newcomer.serving import clean_env, serve

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
BOUND_S = 1800
"""A generous bound: the whole README takes about four minutes on a quiet machine, and a
shared, loaded one can be several times slower."""


def test_blocks_are_found_in_order_with_their_skip_markers() -> None:
    text = """
```sh
echo one
```

<!-- readme-test: skip needs a real vendor key -->
```sh
cairn credential set anthropic < key.txt
```

- a list item:

  ```bash
  echo two \\
    three
  ```

```console
$ echo four
output line
$ echo five \\
  six
```

```python
print("not shell")
```
"""
    found = blocks(text)
    assert [b.lang for b in found] == ["sh", "sh", "bash", "console"]
    assert [b.skip for b in found] == [None, "needs a real vendor key", None, None]
    assert found[2].code == "echo two \\\n  three"
    assert found[3].code == "echo four\necho five \\\n  six"
    ran = script(found, {})
    assert "key.txt" not in ran and "output line" not in ran


@pytest.mark.slow
def test_every_readme_shell_block_runs_as_written(tmp_path: Path) -> None:
    found = blocks(README.read_text(encoding="utf-8"))
    assert any(b.skip is None for b in found)
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix))  # `source .venv/bin/activate` as written
    env = clean_env(home)
    with serve(home, "--demo", "--local-login", env=env, within_s=120) as server:  # make run
        port = server.url.rsplit(":", 1)[1]
        code = script(found, {"127.0.0.1:8765": f"127.0.0.1:{port}"})
        try:
            done = subprocess.run(
                ["bash", "-c", code],
                cwd=work,
                env=env | {"PATH": os.environ["PATH"]},
                capture_output=True,
                text=True,
                timeout=BOUND_S,
                check=False,
            )
        except subprocess.TimeoutExpired as late:
            stderr = late.stderr.decode() if isinstance(late.stderr, bytes) else late.stderr or ""
            started = re.findall(r"::readme-block (\d+)", stderr)
            where = f"README.md line {started[-1]}" if started else "the start"
            pytest.fail(f"the README did not finish within {BOUND_S} s; it was at {where}")
    if done.returncode != 0 or "::readme-done" not in done.stderr:
        started = re.findall(r"::readme-block (\d+)", done.stderr)
        where = f"README.md line {started[-1]}" if started else "before the first block"
        pytest.fail(
            f"the block at {where} failed (exit {done.returncode}):\n"
            f"--- stderr (tail)\n{done.stderr[-3000:]}\n--- stdout (tail)\n{done.stdout[-2000:]}"
        )
