"""The run engine: fire → resolve tools → model turns → tool calls → ledger row."""
