"""The demo sandbox that ``make run`` loads, and the small MCP server it uses."""
