"""A small real MCP server (stdio) for the demo: an order desk with three tools.

Run it as ``python -m cairn.demo.orders_server``; ``cairn demo`` registers it as the
``orders`` source so the demo's healthy agent has something real to call.
"""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

ORDERS: dict[str, dict[str, str | None]] = {
    "A-1001": {"status": "shipped", "carrier": "DHL", "eta": "2 days"},
    "A-1002": {"status": "processing", "carrier": None, "eta": "5 days"},
    "A-1003": {"status": "delivered", "carrier": "UPS", "eta": None},
}

server = MCPServer("cairn-demo-orders")


@server.tool()
def lookup_order(order_id: str) -> str:
    """Status, carrier and ETA of an order, e.g. A-1001."""
    order = ORDERS.get(order_id)
    if order is None:
        raise ValueError(f"no order {order_id!r}")
    return f"order {order_id}: {order['status']}, carrier {order['carrier']}, eta {order['eta']}"


@server.tool()
def list_orders() -> list[str]:
    """Every known order id."""
    return sorted(ORDERS)


@server.tool()
def refund_order(order_id: str, reason: str) -> str:
    """Refund an order (the demo only records the request)."""
    if order_id not in ORDERS:
        raise ValueError(f"no order {order_id!r}")
    return f"refund requested for {order_id}: {reason}"


if __name__ == "__main__":
    server.run("stdio")
