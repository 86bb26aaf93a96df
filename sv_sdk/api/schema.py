"""OpenAPI post-processing: every operation documents the problem responses it can give."""

from .exceptions import PROBLEM_CONTENT_TYPE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

_TITLES = {
    400: "Invalid input or malformed body",
    401: "Not authenticated",
    403: "Not allowed (roles or CSRF)",
    404: "Not found",
    405: "Method not allowed",
    413: "Body too large",
    415: "Unsupported media type",
    429: "Rate limited; see Retry-After",
    503: "Database unavailable; retry",
}


def _problem_response(status: int) -> dict:
    return {
        "description": _TITLES.get(status, "Problem details"),
        "content": {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}},
    }


def add_problem_responses(result, generator, request, public):
    """SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] entry."""
    result.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in result["components"]["schemas"]:
        return result  # no view references it: nothing to document
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            # Errors declared by views carry the problem media type, not application/json.
            for status, response in responses.items():
                if str(status)[0] in "45" and "content" in response:
                    response["content"] = {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}}
            statuses = {503}
            secured = [req for req in operation.get("security", []) if req]
            if secured:
                statuses |= {401, 403}
            if "requestBody" in operation:
                statuses |= {400, 413, 415}
            if "{" in path:
                statuses.add(404)
            for status in sorted(statuses):
                responses.setdefault(str(status), _problem_response(status))
    return result
