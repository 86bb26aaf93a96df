"""Cross-domain API paths (users), mounted under /api/v1/."""

urlpatterns = []
