"""Model instances from rows of hand-written SQL, as the ORM would build them."""

import functools
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Model


@dataclass(frozen=True)
class ModelRow:
    """One model's slice of a row: which columns, and how to turn them into an instance.

    For the few reads on hot paths whose SQL is made once per process instead
    of being compiled by the ORM on every call.
    """

    model: type[Model]
    attnames: tuple[str, ...]
    pk_index: int
    # (index in the slice, converter, its column): what the ORM applies to
    # each value read, e.g. JSONField's from_db_value.
    converters: tuple[tuple[int, object, object], ...]

    def columns(self, alias: str) -> str:
        """The model's concrete columns, qualified by `alias`, in the order `build` reads them."""
        return ", ".join(f'{alias}."{f.column}"' for f in self.model._meta.concrete_fields)

    def build(self, values: list, connection) -> Model:
        for i, converter, col in self.converters:
            values[i] = converter(values[i], col, connection)
        return self.model.from_db(connection.alias, self.attnames, values)


@functools.cache
def model_row(model: type[Model]) -> ModelRow:
    """The ModelRow of `model`, made once per process."""
    connection = connections[DEFAULT_DB_ALIAS]
    fields = model._meta.concrete_fields
    converters = []
    for i, field in enumerate(fields):
        col = field.get_col(model._meta.db_table)
        for converter in connection.ops.get_db_converters(col) + field.get_db_converters(
            connection
        ):
            converters.append((i, converter, col))
    attnames = tuple(f.attname for f in fields)
    return ModelRow(model, attnames, attnames.index(model._meta.pk.attname), tuple(converters))
