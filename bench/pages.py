"""Dashboard pages over a 100,000-run ledger: each page's load time through ``cairn serve``.

The ledger is built first, with no server running (``bench._ledger``): 100,000 finished runs
(default) spread over four scripted agents, an owner key, and a cost-watch threshold on
``support`` (so the usage page computes runaway flags too). Then ``cairn serve`` (the console
script, a separate process, as ``bench.server`` starts it) serves it on a free loopback
port, and one real test run of ``support`` is fired through it, so the run page shows a run
with events and an explanation. A webhook source with a trigger on ``support`` receives
``--events`` events (every fourth filtered out, one in fifty refused), so the events pages
list real decisions.

Each page is then fetched with the session cookie the login form sets (the page's HTML
only, as a browser's first request; the script and stylesheet are static and cached),
``--repeat`` times per page in alternating rounds after a warm-up. The time is from sending
the request to having read the whole body, on loopback: the server's time plus a loopback
round trip. Target: every page's p90 under 300 ms (the verdict ratio is p90 / 300 ms). The
live tool catalog loads after the agent page as a fragment and is timed apart; it resolves
the agent's tool sources (builtin here) and is not a page. So are the runs page's summary
strip, which aggregates every run of the window (like the usage page), and a run's
explanation, which may aggregate its agent's hour.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx

from bench._common import BenchError, Stats, Verdict, header, note, scratch_app, scratch_dir
from bench._ledger import SANDBOX, create_agents, populate
from bench.server import _served  # the same ``cairn serve`` subprocess as the server bench
from cairn.services.access import create_key
from cairn.services.app import App

NAME = "pages"
TARGET_MS = 300.0
LISTED = "support"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This benchmark's options."""
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the ledger (100000)")
    parser.add_argument("--repeat", type=int, default=50, help="timed loads per page (50)")
    parser.add_argument("--workers", type=int, default=8, help="the server's run workers (8)")
    parser.add_argument("--events", type=int, default=2_000, help="webhook events (2000)")


@dataclass(frozen=True, slots=True)
class Page:
    """One page to load: a label, its path, and a string its HTML must contain."""

    label: str
    path: str
    expect: str
    verdict: bool = True


async def _events(app: App, count: int) -> str:
    """``count`` events on a webhook source whose trigger on ``support`` filters on a
    channel: three in four match (fired runs), one in four is filtered out, one in fifty is
    a refused delivery. Returns the newest event id."""
    from cairn.services.ingest import ingest, record_rejected
    from cairn.services.triggers import create_trigger
    from cairn.services.webhooks import add_webhook_source

    hook = add_webhook_source(app, SANDBOX, "bench-hook").source
    create_trigger(app, SANDBOX, LISTED, hook.source_id, filter_config={"channel": "C1"})
    newest = ""
    for index in range(count):
        if index % 50 == 49:
            newest = record_rejected(app, hook, "bad signature")
            continue
        channel = "C1" if index % 4 else "C2"
        result = await ingest(app, hook, "message.created", {"channel": channel, "n": index})
        newest = result.event_id
    return newest


def _build(home: Path, runs: int, events: int) -> tuple[str, str, str]:
    """The ledger in ``home``: returns the owner token, the newest ``support`` run id and
    the newest event id."""
    with scratch_app(home) as app:
        agents = anyio.run(create_agents, app, None)
        started = time.perf_counter()
        newest_event = anyio.run(_events, app, events)
        note(f"events: {events:,} ingested in {time.perf_counter() - started:.1f} s")
        summary = populate(app, agents, runs)
        # Rows written straight into the ledger are not in the hourly usage rollup yet; a
        # live server rolls each run up as it finishes, so the bench does the same at once.
        from cairn.services.usage import rebuild_rollup

        started = time.perf_counter()
        rolled = rebuild_rollup(app)
        note(f"usage rollup: {rolled:,} runs rolled up in {time.perf_counter() - started:.1f} s")
        _key, token = create_key(app, SANDBOX, "bench", "owner")
        try:
            from cairn.services.usage import set_threshold

            set_threshold(app, SANDBOX, LISTED, tokens_per_hour=1_000)
        except ImportError:
            pass
        note(
            f"ledger: {summary.runs:,} runs built in {summary.seconds:.1f} s over "
            f"{len(summary.per_agent)} agents ({LISTED}: {summary.per_agent[LISTED]:,})"
        )
        return token, summary.newest[LISTED], newest_event


def _pages(run_id: str, bulk_run_id: str, event_id: str) -> list[Page]:
    prefix = run_id[:14]
    return [
        Page("/runs (newest 50, all agents)", "/runs", 'id="runs"'),
        Page("/runs?status=failed", "/runs?status=failed", 'id="runs"'),
        Page("/runs?status=running (none: full walk)", "/runs?status=running", 'id="runs"'),
        Page("/runs?agent=support&kind=trigger", "/runs?agent=support&kind=trigger", 'id="runs"'),
        Page("/runs?since=1h", "/runs?since=1h", 'id="runs"'),
        Page("/runs?outcome=problems (scan)", "/runs?outcome=problems", 'id="runs"'),
        Page("/runs?outcome=no-op (scan)", "/runs?outcome=no-op", 'id="runs"'),
        Page(f"/runs?q={prefix} (id prefix)", f"/runs?q={prefix}", run_id),
        Page("/runs/{id} (events, trace, explain)", f"/runs/{run_id}", "Timeline"),
        Page("/runs/{id} (bulk row, no events)", f"/runs/{bulk_run_id}", "Tool resolution"),
        Page("/events (newest 25, with decisions)", "/events", 'id="events"'),
        Page("/events/{id} (decisions, explanation)", f"/events/{event_id}", "Trigger decisions"),
        Page("/agents", "/agents", 'class="agents"'),
        Page("/agents/support", f"/agents/{LISTED}", "Test fire"),
        Page("/usage (24 h: every run)", "/usage", "Top spenders"),
        Page("/usage?window=30d", "/usage?window=30d", "Top spenders"),
        Page(
            "  fragment /runs/summary (24 h: every run)",
            "/runs/summary",
            "summary-strip",
            verdict=False,
        ),
        Page(
            "  fragment /runs/{id}/explanation",
            f"/runs/{run_id}/explanation",
            "explanation",
            verdict=False,
        ),
        Page(
            "  fragment /agents/support/catalog",
            f"/agents/{LISTED}/catalog",
            "json_extract",
            verdict=False,
        ),
    ]


def run(options: argparse.Namespace) -> list[Verdict]:
    """Build the ledger, serve it, load every page ``--repeat`` times, judge each p90."""
    header(f"pages: the dashboard over a {options.runs:,}-run SQLite ledger, via cairn serve")
    with scratch_dir("pages") as home:
        token, bulk_run_id, event_id = _build(home, options.runs, options.events)
        with (
            _served(home, options.workers) as server,
            httpx.Client(base_url=server.url, timeout=30.0) as client,
        ):
            _log_in(client, token)
            fired = client.post(
                f"/api/v1/sandboxes/{SANDBOX}/agents/{LISTED}/test",
                json={"event_payload": {"order_id": "A-bench"}},
                headers={"Authorization": f"Bearer {token}"},
            )
            if fired.status_code != 200 or fired.json()["status"] != "succeeded":
                raise BenchError(f"the test fire answered {fired.status_code}: {fired.text[:300]}")
            pages = _pages(fired.json()["run_id"], bulk_run_id, event_id)
            samples = _measure(client, pages, options.repeat)
    header(f"pages: load time per page (request to last byte, loopback, n={options.repeat})")
    verdicts: list[Verdict] = []
    for page in pages:
        stats = Stats.of(samples[page.path])
        note(f"{page.label:<44} {stats.line()}")
        if page.verdict:
            verdicts.append(
                Verdict(NAME, f"{page.label} p90 / {TARGET_MS:g} ms", stats.p90_ms / TARGET_MS, 1.0)
            )
    return verdicts


def _log_in(client: httpx.Client, token: str) -> None:
    """Log in through the login form, as a browser does: the client keeps the session
    cookie it answers with (the key itself never goes in a cookie)."""
    answer = client.post("/login", data={"key": token, "next": "/runs"})
    if answer.status_code != 303 or "cairn_session" not in client.cookies:
        raise BenchError(f"the login answered {answer.status_code}: {answer.text[:300]}")


def _measure(client: httpx.Client, pages: list[Page], repeat: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {page.path: [] for page in pages}
    for round_ in range(repeat + 5):
        for page in pages:
            started = time.perf_counter()
            response = client.get(page.path)
            body = response.text
            elapsed = time.perf_counter() - started
            if response.status_code != 200 or page.expect not in body:
                raise BenchError(
                    f"GET {page.path} answered {response.status_code} without "
                    f"{page.expect!r}: {body[:300]}"
                )
            if round_ >= 5:
                samples[page.path].append(elapsed)
    return samples


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.pages``."""
    parser = argparse.ArgumentParser(prog="python -m bench pages", description=__doc__)
    add_arguments(parser)
    for verdict in run(parser.parse_args(argv)):
        note(verdict.line())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
