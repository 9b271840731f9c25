"""The web dashboard: server-rendered pages over the same operations as the API.

``pages`` is the router (``/``, ``/runs``, ``/agents``, ``/usage``, ``/login``), ``sessions``
the cookie login, ``views`` the pure functions that shape ledger data for the templates,
``live`` the sandbox-wide stream of runs. Everything the browser loads is served from
``templates/`` and ``static/`` in this package: no build step, no CDN, works offline.
"""
