"""sv_sdk: identity, email, audit and permissions in one PostgreSQL database."""
