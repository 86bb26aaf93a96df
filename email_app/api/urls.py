"""API paths of email_app, mounted under /api/v1/."""

from django.urls import path

from . import views

urlpatterns = [
    path("email/templates", views.EmailTemplateListApi.as_view(), name="email-templates"),
    path(
        "email/templates/<str:template_id>",
        views.EmailTemplateDetailApi.as_view(),
        name="email-template",
    ),
    path(
        "email/templates/<str:template_id>/preview",
        views.EmailTemplatePreviewApi.as_view(),
        name="email-template-preview",
    ),
    path("email/sends", views.EmailSendListApi.as_view(), name="email-sends"),
    path("email/sends/<str:send_id>", views.EmailSendDetailApi.as_view(), name="email-send-detail"),
    path("email/send", views.EmailSendApi.as_view(), name="email-send"),
    path("email/preferences", views.EmailPreferencesApi.as_view(), name="email-preferences"),
    path(
        "email/unsubscribe/<str:token>",
        views.EmailUnsubscribeApi.as_view(),
        name="email-unsubscribe",
    ),
    path("email/unsubscribe", views.EmailUnsubscribeQueryApi.as_view()),
]
