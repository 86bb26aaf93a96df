"""API paths of audit_app, mounted under /api/v1/."""

urlpatterns = []
