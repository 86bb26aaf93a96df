"""permission_required for plain Django views."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.test import RequestFactory

from permissions_app.decorators import permission_required
from tests.support import user_with

pytestmark = pytest.mark.django_db


@permission_required("audit:read")
def audit_page(request):
    return HttpResponse("the log")


def request_as(user):
    request = RequestFactory().get("/reports/audit")
    request.user = user
    return request


def test_a_view_needing_a_permission_serves_those_who_hold_it():
    assert audit_page(request_as(user_with("audit:*"))).content == b"the log"


def test_a_view_needing_a_permission_refuses_others_and_sends_anonymous_users_to_log_in():
    with pytest.raises(PermissionDenied):
        audit_page(request_as(user_with("users:read")))
    response = audit_page(request_as(AnonymousUser()))
    assert response.status_code == 302 and "next=/reports/audit" in response["Location"]
