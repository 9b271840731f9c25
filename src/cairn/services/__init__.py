"""Services: what Cairn does, callable in-process by the CLI (and later the API).

They own transactions and compose the store, tool resolution and the runner; they never
format output and never parse command lines.
"""
