"""The web dashboard: server-rendered pages over the same operations as the API.

``pages`` is the main router (``/``, ``/runs``, ``/agents``, ``/usage``, ``/login``),
``event_pages`` the events and their trigger decisions (``/events``), ``actions`` the
reversible writes (replay a run, pause or resume a trigger), ``run_lists`` the runs list's
bounded queries, ``sessions`` the cookie login, ``views`` the pure functions that shape
ledger data for the templates. Everything the browser loads is served from
``templates/`` and ``static/`` in this package: no build step, no CDN, works offline.
"""
