"""The top layer: the domain apps composed into the product (flows, their API, the user admin)."""
