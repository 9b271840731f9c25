"""The HTTP API (FastAPI), and the operations it shares with the SDK's in-process transport."""
