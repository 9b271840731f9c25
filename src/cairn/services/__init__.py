"""Services: what Cairn does, callable in-process by the CLI, the API and the dashboard.

They own transactions and compose the store, tool resolution and the runner; they never
format output and never parse command lines.

Loading them provides the ``cairn`` tool-source kind (``cairn.services.cairn_ops``: Cairn's
own operations as tools, which call these services), by path, so nothing is imported
until an agent that names it resolves its tools.
"""

from cairn.tools.kinds import source_kinds

source_kinds.provide("cairn", "cairn.services.cairn_ops:CairnOpsSource")
