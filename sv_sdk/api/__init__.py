"""API glue shared by the apps: problem responses, pagination."""
