"""OpenAPI generation: the document says what the server does.

- Every operation lists each problem response it can give, with its `code` values.
- Input serializers that refuse unknown fields say `additionalProperties: false`,
  and their strings that refuse "" say so (`minLength`, and `pattern` when
  surrounding whitespace is trimmed first).
- A created resource, and a list's first row, link to the operations on it, for
  clients and stateful fuzzing.
- `x-unstated-rules` lists the fields (or problem codes) of rules no JSON Schema
  can state (a cursor must come from a `next` link, `since` before `until`, a
  token must be one we sent): a request the schema allows may still get a 400
  naming one of them. Each is described in words in the operation's description.
"""

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from .exceptions import PROBLEM_CONTENT_TYPE

UNSTATED_RULES = "x-unstated-rules"
PASSWORD_RULES = "Django's password validators apply: at least 8 characters, not common, not entirely numeric, not like the email or name; a 400 naming the field otherwise."  # noqa: S105, E501

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_COMPONENT = {
    "type": "object",
    "description": "RFC 9457 problem details, as every error response carries them.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string", "description": "Stable machine-readable error code."},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Messages per invalid field (validation errors only).",
        },
    },
    "required": ["type", "title", "status", "detail", "code"],
}

# (description, codes any operation answering this status can give)
_GENERIC = {
    400: ("Invalid input", {"validation_error", "invalid_json", "invalid_input"}),
    401: ("Not authenticated", {"not_authenticated"}),
    403: ("Not allowed (roles or CSRF)", {"permission_denied"}),
    404: ("Not found", {"not_found"}),
    405: ("Method not allowed", {"method_not_allowed"}),
    406: ("Not acceptable", {"not_acceptable"}),
    409: ("Conflict", set()),
    413: ("Body too large", {"payload_too_large"}),
    415: ("Unsupported media type", {"unsupported_media_type"}),
    429: ("Rate limited; see Retry-After", {"rate_limited"}),
    503: ("Database unavailable; retry", {"service_unavailable"}),
}


def generic_codes(status: int) -> set[str]:
    return set(_GENERIC.get(status, ("", set()))[1])


def problem_schema(codes) -> dict:
    """A problem document whose `code` is one of `codes`."""
    enum = {"enum": sorted(codes)} if codes else {}
    return {"allOf": [PROBLEM_REF, {"type": "object", "properties": {"code": enum}}]}


def _declared_codes(response: dict) -> set[str]:
    for media in response.get("content", {}).values():
        for part in media.get("schema", {}).get("allOf", []):
            codes = part.get("properties", {}).get("code", {}).get("enum")
            if codes:
                return set(codes)
    return set()


def _problem_response(status: int, codes) -> dict:
    description = _GENERIC.get(status, ("Problem details",))[0]
    return {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": problem_schema(codes)}},
    }


class StrictSerializerExtension(OpenApiSerializerExtension):
    """StrictSerializer refuses undeclared fields and blank strings: the schema says both."""

    target_class = "sv_sdk.api.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_basic_serializer(self.target, direction)
        schema["additionalProperties"] = False
        if "__doc__" not in type(self.target).__dict__ or not type(self.target).__doc__:
            schema.pop("description", None)  # StrictSerializer's own docstring, not this input's
        for name, field in self.target.fields.items():
            prop = schema.get("properties", {}).get(name)
            if prop is None or not isinstance(field, serializers.CharField):
                continue
            if not field.allow_blank:
                prop.setdefault("minLength", 1)
            if "pattern" in prop or "format" in prop:
                continue
            # DRF refuses NUL characters; all-whitespace trims to "", which is blank.
            if not field.allow_blank and field.trim_whitespace:
                prop["pattern"] = r"^[^\x00]*[^\s\x00][^\x00]*$"
            else:
                prop["pattern"] = r"^[^\x00]*$"
        return schema


def _properties(schemas: dict, schema: dict) -> dict:
    return schemas.get(str(schema.get("$ref")).rpartition("/")[2], {}).get("properties", {})


def _id_pointer(schemas: dict, response: dict, param: str) -> str | None:
    """Where `param` is in the body: `/id`, `/role/id` for `role_id`, or a list's first row."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    properties = _properties(schemas, schema)
    if "id" in properties:
        return "/id"
    if "id" in _properties(schemas, properties.get("results", {}).get("items", {})):
        return "/results/0/id"
    if param.endswith("_id") and param.removesuffix("_id") in properties:
        return f"/{param.removesuffix('_id')}/id"
    return None


def _add_links(paths: dict, schemas: dict) -> None:
    # What a POST to a collection creates (201), and the first row of its list (GET 200),
    # is what `{collection}/{param}` and the paths below it serve (`users/{user_id}`,
    # `users/{user_id}/roles`, ...).
    for path, operations in paths.items():
        for method, status in (("post", "201"), ("get", "200")):
            response = operations.get(method, {}).get("responses", {}).get(status)
            if response is not None:
                _link(paths, schemas, path, response)


def _link(paths: dict, schemas: dict, path: str, response: dict) -> None:
    known = {part[1:-1] for part in path.split("/") if part.startswith("{")}
    for other_path, other_operations in paths.items():
        segment = other_path.removeprefix(path + "/").partition("/")[0]
        if not other_path.startswith(path + "/{") or not segment.endswith("}"):
            continue
        param = segment[1:-1]
        wanted = {part[1:-1] for part in other_path.split("/") if part.startswith("{")}
        pointer = _id_pointer(schemas, response, param)
        if pointer is None or wanted != known | {param}:
            continue
        parameters = {param: f"$response.body#{pointer}"}
        parameters.update({name: f"$request.path.{name}" for name in known})
        for operation in other_operations.values():
            if isinstance(operation, dict) and "operationId" in operation:
                response.setdefault("links", {})[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": parameters,
                }


def add_problem_responses(result, generator, request, public):
    """SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"] entry."""
    result.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_COMPONENT
    for path, operations in result.get("paths", {}).items():
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            statuses = {503}
            if [req for req in operation.get("security", []) if req]:
                statuses |= {401, 403}
            if "requestBody" in operation:
                statuses |= {400, 413, 415}
            query = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "query"}
            if query:
                statuses.add(400)
            if "cursor" in query:
                operation[UNSTATED_RULES] = sorted({*operation.get(UNSTATED_RULES, ()), "cursor"})
            if "{" in path:
                statuses.add(404)
            for status in statuses | {int(s) for s in responses if str(s)[0] in "45"}:
                existing = responses.get(str(status), {})
                codes = _declared_codes(existing)
                if status in statuses or not codes:
                    codes |= generic_codes(status)
                responses[str(status)] = _problem_response(status, codes)
            operation["responses"] = dict(sorted(responses.items()))
    _add_links(result.get("paths", {}), result["components"]["schemas"])
    return result
