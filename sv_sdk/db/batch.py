"""Several statements in one round trip to PostgreSQL.

A flow that writes seven tables spends most of its time waiting: each statement
is a round trip, and on a local server a round trip costs about as much as the
statement itself. `Batch` sends the statements of one step together as a single
simple-protocol query; the server runs them in order, in the caller's
transaction, and stops at the first error (which then aborts the transaction, as
any database error does).

Values are merged into the text by psycopg's client-side binding
(`ClientCursor.mogrify`), the quoting Django's default cursor uses for every
query; nothing is formatted by hand. An INSERT's values are prepared by Django's
own insert compiler, so field preparation (defaults, auto_now, JSON, encryption)
is the ORM's; rows read come back as instances built as the ORM builds them
(sv_sdk.db.rows). Django's execute wrappers and query logging see one query
per batch.

A service writes through a Batch: given one (`batch=`), it queues its
statements there and the caller runs them with the rest; without, it makes its
own and runs it. A queued read returns a `Result` handle whose `value` is there
once the batch ran. Rows that need a query of their own before they can be
written (audit rows take their ids first) are gathered and flushed by `run`,
one query for all of them.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from django.db import DEFAULT_DB_ALIAS, connections, router, transaction
from django.db.models import Model, QuerySet, signals
from django.db.models.deletion import Collector
from django.db.models.sql import DeleteQuery, InsertQuery, UpdateQuery
from django.db.models.sql.compiler import SQLInsertCompiler

from .rows import model_row

_TUPLES_OK = psycopg.pq.ExecStatus.TUPLES_OK


class Result:
    """What one statement of a Batch gives, in `value` once the batch has run."""

    __slots__ = ("_convert", "_done", "_value")

    def __init__(self, convert: Callable[[list], Any] | None) -> None:
        self._convert = convert
        self._done = False

    def _set(self, rows: list) -> None:
        self._value = self._convert(rows) if self._convert else rows
        self._done = True

    @property
    def value(self) -> Any:
        """The statement's rows, or what its `then` made of them."""
        if not self._done:
            raise RuntimeError("the batch has not run yet")
        return self._value


class Batch:
    def __init__(self, using: str = DEFAULT_DB_ALIAS) -> None:
        # The connection itself, not the `django.db.connection` proxy: the insert
        # and select compilers read its attributes hundreds of times.
        self._db = connections[using]
        self._db.ensure_connection()
        self._mogrifier = psycopg.ClientCursor(self._db.connection)
        self._statements: list[tuple[str, Result | None]] = []
        self._gathered: dict[Callable, list] = {}
        self._saved: list[Model] = []

    @property
    def using(self) -> str:
        return self._db.alias

    def add(
        self,
        sql: str,
        params: Sequence[Any] | dict[str, Any] | None = None,
        *,
        then: Callable[[list[tuple]], Any] | None = None,
    ) -> Result:
        """Queue one statement; its Result holds its rows (or `then(rows)`) after `run`."""
        result = Result(then)
        self._queue(sql, params, result)
        return result

    def _queue(self, sql: str, params, result: Result | None) -> None:
        text = self._mogrifier.mogrify(sql, params) if params is not None else sql
        self._statements.append((text, result))

    def select(
        self,
        model: type[Model],
        where: str,
        params: Sequence[Any] = (),
        *,
        then: Callable[[list[Model]], Any] | None = None,
    ) -> Result:
        """Queue a read of whole rows of `model` matching `where`; its result is instances.

        `where` is constant SQL over the table (no alias) with %s placeholders
        for `params`. The statement is written from the model's columns, not
        compiled by the ORM, which on a hot path cost more than the read itself.
        """
        row = model_row(model)
        sql = (
            f"SELECT {row.columns(model._meta.db_table)} FROM {model._meta.db_table} WHERE {where}"
        )

        def load(rows: list[tuple]) -> Any:
            instances = [row.build(list(values), self._db) for values in rows]
            return then(instances) if then else instances

        return self.add(sql, params, then=load)

    def insert(self, *objs: Model) -> None:
        """Queue one INSERT of these unsaved instances (all of one model), as `save` would."""
        model = type(objs[0])
        if any(type(obj) is not model for obj in objs):
            raise TypeError("one INSERT holds rows of one model")
        fields = _insert_fields(model)
        query = InsertQuery(model)
        query.insert_values(fields, objs, raw=False)
        compiler = query.get_compiler(connection=self._db)
        # The values as Django's insert compiler prepares them (pre_save, then
        # get_db_prep_save); the text around them depends only on the model and
        # the number of rows, so it is written once, not compiled for every row.
        rows = [
            [compiler.prepare_value(field, compiler.pre_save_val(field, obj)) for field in fields]
            for obj in objs
        ]
        if _custom_placeholders(model) or any(
            hasattr(value, "as_sql") for row in rows for value in row
        ):
            # Expressions or custom placeholders: the compiler writes this one.
            placeholder_rows, param_rows = SQLInsertCompiler.assemble_as_sql(compiler, fields, rows)
            values = self._db.ops.bulk_insert_sql(fields, placeholder_rows)
            sql = f"{_insert_prefix(self._db.alias, model)} {values}"
        else:
            sql = _insert_sql(self._db.alias, model, len(objs))
            param_rows = rows
        self._saved.extend(objs)
        # No RETURNING: the primary keys are made in Python (UUIDv7, or taken
        # from a sequence beforehand), so nothing needs to come back.
        self._queue(sql, [value for row in param_rows for value in row], None)

    def gather(self, flush: Callable[["Batch", list], None], item: Any) -> None:
        """Keep `item` for `flush`, called once by `run` with every item gathered for it.

        For rows that need a query of their own before they can be written (the
        audit log's take their ids first): `flush(batch, items)` runs when the
        batch does, before its statements are sent, in the same transaction, and
        queues what it writes last.
        """
        self._gathered.setdefault(flush, []).append(item)

    def run(self) -> None:
        """Send every queued statement at once, in one transaction; fill their Results.

        The rows of a `select` come back as model instances, the others as tuples.
        """
        # Savepoint-free: a failed batch aborts the caller's transaction anyway.
        with transaction.atomic(using=self._db.alias, savepoint=False):
            while self._gathered:
                flush = next(iter(self._gathered))
                flush(self, self._gathered.pop(flush))
            statements, self._statements = self._statements, []
            if not statements:
                return
            found = []
            with self._db.cursor() as cursor:
                cursor.execute(";\n".join(text for text, _ in statements))
                raw = cursor.cursor
                for _text, result in statements:
                    # The result's status, not `description`: that builds a Column
                    # per field of every result, which nothing here reads.
                    rows = raw.fetchall() if raw.pgresult.status == _TUPLES_OK else []
                    if result is not None:
                        found.append((result, rows))
                    raw.nextset()
        # Outside the atomic block: what `then` raises (say, a missing row) is the
        # caller's to handle, and must not mark the caller's transaction as failed.
        for result, rows in found:
            result._set(rows)
        for obj in self._saved:
            obj._state.adding = False
            obj._state.db = self._db.alias
        self._saved.clear()


@functools.cache
def _insert_fields(model: type[Model]) -> tuple:
    return tuple(f for f in model._meta.local_concrete_fields if not f.generated)


@functools.cache
def _custom_placeholders(model: type[Model]) -> bool:
    """Whether a field of `model` writes its own placeholder (then the compiler writes the SQL)."""
    return any(hasattr(field, "get_placeholder") for field in _insert_fields(model))


def _insert_prefix(using: str, model: type[Model]) -> str:
    ops = connections[using].ops
    columns = ", ".join(ops.quote_name(field.column) for field in _insert_fields(model))
    return f"{ops.insert_statement()} {ops.quote_name(model._meta.db_table)} ({columns})"


@functools.lru_cache(maxsize=256)
def _insert_sql(using: str, model: type[Model], rows: int) -> str:
    """INSERT of `rows` rows of plain values: Django's text with a VALUES list of %s.

    A VALUES list, not Django's PostgreSQL UNNEST of one array per column:
    UNNEST saves planning a long insert, but a batch quotes its values into the
    text, and quoting arrays costs more than planning a few rows.
    """
    row = "(" + ", ".join(["%s"] * len(_insert_fields(model))) + ")"
    return f"{_insert_prefix(using, model)} VALUES {', '.join([row] * rows)}"


def delete_cascading(obj: Model) -> None:
    """`obj.delete()`, with the cascade's statements sent in one round trip.

    Django's Collector decides what goes, by the models' on_delete rules, as
    `Model.delete` does. When everything it found can go by plain statements
    (related rows deleted or set to NULL by a query, no delete signals to
    send), those statements and the object's own DELETE go together in one
    Batch; otherwise the Collector deletes as usual, a statement at a time.
    """
    model = type(obj)
    db = router.db_for_write(model, instance=obj)
    collector = Collector(using=db, origin=obj)
    collector.collect([obj])
    statements = _plain_cascade(collector, model, db)
    if statements is None:
        collector.delete()
        return
    batch = Batch(using=db)
    for sql, params in statements:
        batch.add(sql, params)
    meta = model._meta
    batch.add(f'DELETE FROM {meta.db_table} WHERE "{meta.pk.column}" = %s', [obj.pk])
    batch.run()
    setattr(obj, meta.pk.attname, None)


def _plain_cascade(collector: Collector, model: type[Model], db: str) -> list | None:
    """The Collector's fast deletes and field updates as SQL; None if it found more than those."""
    if set(collector.data) != {model} or any(
        signal.has_listeners(model) for signal in (signals.pre_delete, signals.post_delete)
    ):
        return None
    connection = connections[db]
    statements = []
    for queryset in collector.fast_deletes:
        if not isinstance(queryset, QuerySet):
            return None
        query = queryset.query.clone()
        query.__class__ = DeleteQuery  # as QuerySet._raw_delete does
        statements.append(query.get_compiler(connection=connection).as_sql())
    for (field, value), targets in collector.field_updates.items():
        for queryset in targets:
            if not isinstance(queryset, QuerySet) or queryset._result_cache is not None:
                return None
            query = queryset.query.chain(UpdateQuery)
            query.add_update_values({field.name: value})
            statements.append(query.get_compiler(connection=connection).as_sql())
    return statements
