"""Serializer helpers shared by the apps' APIs."""

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """An input serializer that rejects fields it does not declare.

    Nested as `SomethingApi.InputSerializer`, it is named `SomethingInput` in
    the OpenAPI document, so one-class-per-operation APIs don't collide there.
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        outer, _, inner = cls.__qualname__.rpartition(".")
        if outer and "Meta" not in cls.__dict__:
            name = outer.removesuffix("Api") + inner.removesuffix("Serializer")
            cls.Meta = type("Meta", (), {"ref_name": name})

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {field: ["This field is not accepted here."] for field in unknown}
                )
        return super().to_internal_value(data)


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, as every error response carries them."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    code = serializers.CharField(help_text="Stable machine-readable error code.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages per invalid field (validation errors only).",
    )


def problems(*statuses: int) -> dict:
    """OpenAPI responses entry for the given error statuses."""
    from drf_spectacular.utils import OpenApiResponse

    return {
        status: OpenApiResponse(ProblemSerializer, description="Problem details")
        for status in statuses
    }
