"""better-auth's protocol at /api/auth/: its official client works against sv_sdk unchanged.

A translation layer only: every rule is the one /api/v1 runs (flows, services, rate
limits, lockouts); these modules turn better-auth's requests into those calls and the
answers and errors back into better-auth's shapes (docs/better-auth.md). One module per
concern; each adds its paths in urls.py.
"""
