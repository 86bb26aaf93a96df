"""API paths of audit_app, mounted under /api/v1/."""

from django.urls import path

from . import views

urlpatterns = [
    path("audit-logs", views.AuditLogListApi.as_view(), name="audit-logs"),
    path("audit-logs/<int:log_id>", views.AuditLogDetailApi.as_view(), name="audit-log"),
]
