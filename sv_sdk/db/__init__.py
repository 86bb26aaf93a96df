"""A PostgreSQL backend that understands tables in the project's four schemas."""
