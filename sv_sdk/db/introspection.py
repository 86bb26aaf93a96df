"""Introspection that sees `"schema"."table"` names as well as tables on search_path.

Django's PostgreSQL introspection finds tables by bare name among those
visible on search_path, so tables in the project's schemas are invisible to
it: flush skips them, reset_sequences finds no sequence, and the schema
editor finds no constraint to drop. Every lookup here resolves the name with
to_regclass(), which accepts both forms, and tables in the project's schemas
are reported under the same quoted name their models use as db_table.
"""

from django.db.backends.postgresql import introspection
from django.db.backends.postgresql.introspection import FieldInfo, TableInfo
from django.db.models import Index

from .tables import SCHEMAS

# How a relation is named in results: qualified in our schemas, bare elsewhere.
_DISPLAY_NAME = """
    CASE WHEN {ns}.nspname = ANY(%(schemas)s)
         THEN '"' || {ns}.nspname || '"."' || {rel}.relname || '"'
         ELSE {rel}.relname END
"""


def _display(ns: str, rel: str) -> str:
    return _DISPLAY_NAME.format(ns=ns, rel=rel)


class DatabaseIntrospection(introspection.DatabaseIntrospection):
    def _regclass(self, table_name: str) -> str:
        # quote_name() keeps an already quoted "schema"."table" as it is and
        # quotes a bare name, so case is preserved either way.
        return self.connection.ops.quote_name(table_name)

    def get_table_list(self, cursor):
        cursor.execute(
            f"""
            SELECT {_display("n", "c")},
                   CASE WHEN c.relispartition THEN 'p'
                        WHEN c.relkind IN ('m', 'v') THEN 'v' ELSE 't' END,
                   obj_description(c.oid, 'pg_class')
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind IN ('f', 'm', 'p', 'r', 'v')
              AND (n.nspname = ANY(%(schemas)s)
                   OR (n.nspname NOT IN ('pg_catalog', 'pg_toast', 'information_schema')
                       AND pg_catalog.pg_table_is_visible(c.oid)))
            """,
            {"schemas": list(SCHEMAS)},
        )
        return [TableInfo(*row) for row in cursor.fetchall() if row[0] not in self.ignored_tables]

    def get_table_description(self, cursor, table_name):
        cursor.execute(
            """
            SELECT a.attname,
                   NOT a.attnotnull,
                   pg_catalog.pg_get_expr(d.adbin, d.adrelid),
                   CASE WHEN coll.collname = 'default' THEN NULL ELSE coll.collname END,
                   a.attidentity <> ''
                     OR coalesce(pg_catalog.pg_get_expr(d.adbin, d.adrelid), '')
                        LIKE 'nextval(%%',
                   pg_catalog.col_description(a.attrelid, a.attnum)
            FROM pg_catalog.pg_attribute a
            LEFT JOIN pg_catalog.pg_attrdef d
                   ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            LEFT JOIN pg_catalog.pg_collation coll ON coll.oid = a.attcollation
            WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
            """,
            [self._regclass(table_name)],
        )
        extra = {row[0]: row[1:] for row in cursor.fetchall()}
        cursor.execute(f"SELECT * FROM {self._regclass(table_name)} LIMIT 1")
        return [
            FieldInfo(
                column.name,
                column.type_code,
                column.internal_size if column.display_size is None else column.display_size,
                column.internal_size,
                column.precision,
                column.scale,
                *extra[column.name],
            )
            for column in cursor.description
        ]

    def get_sequences(self, cursor, table_name, table_fields=()):
        cursor.execute(
            """
            SELECT quote_ident(sn.nspname) || '.' || quote_ident(s.relname), a.attname
            FROM pg_catalog.pg_depend d
            JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
            JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
            JOIN pg_catalog.pg_attribute a
                 ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
            WHERE d.refobjid = to_regclass(%s) AND d.deptype IN ('a', 'i')
            """,
            [self._regclass(table_name)],
        )
        return [
            {"name": name, "table": table_name, "column": column}
            for name, column in cursor.fetchall()
        ]

    def get_relations(self, cursor, table_name):
        cursor.execute(
            f"""
            SELECT a.attname, fa.attname, {_display("fn", "fc")}
            FROM pg_catalog.pg_constraint con
            JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
            JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
            JOIN pg_catalog.pg_attribute a
                 ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
            JOIN pg_catalog.pg_attribute fa
                 ON fa.attrelid = con.confrelid AND fa.attnum = con.confkey[1]
            WHERE con.conrelid = to_regclass(%(table)s) AND con.contype = 'f'
              AND cardinality(con.conkey) = 1
            """,
            {"schemas": list(SCHEMAS), "table": self._regclass(table_name)},
        )
        return {column: (ref_column, ref_table) for column, ref_column, ref_table in cursor}

    def get_constraints(self, cursor, table_name):
        regclass = self._regclass(table_name)
        constraints = {}
        # Primary keys, uniques, foreign keys, checks and exclusions.
        cursor.execute(
            f"""
            SELECT con.conname, con.contype,
                   array(SELECT att.attname
                         FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
                         JOIN pg_catalog.pg_attribute att
                              ON att.attrelid = con.conrelid AND att.attnum = k.attnum
                         ORDER BY k.ord),
                   CASE WHEN con.contype = 'f' THEN {_display("fn", "fc")} END,
                   (SELECT fatt.attname FROM pg_catalog.pg_attribute fatt
                    WHERE fatt.attrelid = con.confrelid AND fatt.attnum = con.confkey[1]),
                   pg_catalog.pg_get_constraintdef(con.oid)
            FROM pg_catalog.pg_constraint con
            LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid
            LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace
            WHERE con.conrelid = to_regclass(%(table)s)
            """,
            {"schemas": list(SCHEMAS), "table": regclass},
        )
        for name, kind, columns, ref_table, ref_column, definition in cursor.fetchall():
            constraints[name] = {
                "columns": columns,
                "primary_key": kind == "p",
                "unique": kind in ("p", "u"),
                "foreign_key": (ref_table, ref_column) if kind == "f" else None,
                "check": kind == "c",
                "index": False,
                "definition": definition if kind == "c" else None,
                "options": None,
            }
        # Indexes, including those that back a constraint (Django expects both).
        cursor.execute(
            """
            SELECT ic.relname, am.amname, ix.indisunique, ix.indisprimary,
                   array(SELECT CASE WHEN k.attnum = 0 THEN NULL ELSE att.attname END
                         FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord)
                         LEFT JOIN pg_catalog.pg_attribute att
                              ON att.attrelid = ix.indrelid AND att.attnum = k.attnum
                         ORDER BY k.ord),
                   array(SELECT CASE WHEN (o.opt & 1) = 1 THEN 'DESC' ELSE 'ASC' END
                         FROM unnest(ix.indoption) WITH ORDINALITY AS o(opt, ord)
                         ORDER BY o.ord),
                   ix.indexprs IS NOT NULL OR ix.indpred IS NOT NULL,
                   ic.reloptions
            FROM pg_catalog.pg_index ix
            JOIN pg_catalog.pg_class ic ON ic.oid = ix.indexrelid
            JOIN pg_catalog.pg_am am ON am.oid = ic.relam
            WHERE ix.indrelid = to_regclass(%s)
            """,
            [regclass],
        )
        for (
            name,
            method,
            unique,
            primary,
            columns,
            orders,
            partial_or_expr,
            options,
        ) in cursor.fetchall():
            if name in constraints:
                continue
            is_plain_btree = method == "btree" and not partial_or_expr
            constraints[name] = {
                # Expression indexes list no columns, as in Django's backend.
                "columns": [] if None in columns else columns,
                "orders": orders if method == "btree" else [],
                "primary_key": primary,
                "unique": unique,
                "foreign_key": None,
                "check": False,
                "index": True,
                "type": Index.suffix if is_plain_btree else method,
                "definition": None,
                "options": options,
            }
        return constraints
