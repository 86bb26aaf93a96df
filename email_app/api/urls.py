"""API paths of email_app, mounted under /api/v1/."""

urlpatterns = []
