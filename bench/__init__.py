"""Cairn's benchmarks, each measured side by side with its peer in the same invocation.

``python -m bench`` runs them all with their defaults; ``python -m bench NAME [options]`` runs
one (``python -m bench NAME --help`` lists its options).

=====================  ===================================================================
module                 what it measures (peer; target)
=====================  ===================================================================
``runner_overhead``    median wall time of one persisted scripted run through the real
                       ``Runner`` (pydantic-ai's in-memory ``TestModel`` loop; <= 1/6)
``cli_cold``           a cold ``cairn agent runs support --limit 20 --json`` process over a
                       100,000-run ledger (``llm logs -n 20``; <= 1/3)
``list_scaling``       warm list-runs latency on a ledger of 100 runs vs 1,000,000 runs
                       (itself; ratio near 1)
=====================  ===================================================================

The benchmarks only read what ``src/`` exposes (services, store functions and tables, the
console script); they never patch it, so they measure what ships.
"""
