"""Model backends: one module per vendor behind one streaming interface."""
