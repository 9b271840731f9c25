"""Tool sources, the wrappers around them, and resolution of an agent's catalog."""
