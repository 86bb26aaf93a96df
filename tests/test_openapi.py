"""The OpenAPI document is valid and describes every API path."""

import io

import pytest
import yaml
from django.core.management import call_command
from django.urls import get_resolver


def test_the_openapi_document_validates_without_warnings():
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    document = yaml.safe_load(out.getvalue())

    assert document["openapi"].startswith("3.1")
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The session token from sign-in or sign-up.",
    }
    sign_in = document["paths"]["/api/v1/auth/sign-in"]["post"]
    assert {"200", "401", "429"} <= set(sign_in["responses"])
    problem = sign_in["responses"]["401"]["content"]["application/problem+json"]["schema"]
    assert problem["allOf"][0]["$ref"].endswith("/Problem")
    assert problem["allOf"][1]["properties"]["code"]["enum"] == ["invalid_credentials"]
    # Every operation documents the database-unavailable answer.
    for operations in document["paths"].values():
        for operation in operations.values():
            assert "503" in operation["responses"]


@pytest.mark.django_db
def test_every_api_route_is_in_the_document():
    out = io.StringIO()
    call_command("spectacular", stdout=out)
    paths = set(yaml.safe_load(out.getvalue())["paths"])
    api_routes = {
        "/" + str(p.pattern)
        for p in get_resolver().url_patterns
        if str(getattr(p, "pattern", "")) == "api/v1/"
    }
    assert api_routes  # the v1 include exists
    assert "/api/v1/auth/sign-up" in paths and "/api/v1/users/{user_id}/sessions" in paths
