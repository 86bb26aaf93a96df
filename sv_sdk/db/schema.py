"""Schema editor that names indexes and tables in the project's schemas correctly.

PostgreSQL keeps an index in its table's schema, but Django drops and renames
indexes by bare name, which only finds indexes on search_path: `DROP INDEX IF
EXISTS name` then succeeds while doing nothing. Here the index name is
qualified with the table's schema.
"""

from django.db.backends.postgresql import schema

from .tables import split_table


class DatabaseSchemaEditor(schema.DatabaseSchemaEditor):
    def _index_in_schema(self, model, name: str) -> str:
        namespace, _ = split_table(model._meta.db_table)
        if namespace is None:
            return self.quote_name(name)
        return f"{self.quote_name(namespace)}.{self.quote_name(name)}"

    def _delete_index_sql(self, model, name, sql=None, concurrently=False):
        statement = super()._delete_index_sql(model, name, sql, concurrently)
        statement.parts["name"] = self._index_in_schema(model, name)
        return statement

    def _delete_unique_sql(self, model, name, **options):
        statement = super()._delete_unique_sql(model, name, **options)
        if statement is not None and statement.template == self.sql_delete_index:
            # A unique constraint on expressions (or with a condition) is an index.
            statement.parts["name"] = self._index_in_schema(model, name)
        return statement

    def _rename_index_sql(self, model, old_name, new_name):
        statement = super()._rename_index_sql(model, old_name, new_name)
        # The new name stays bare: RENAME TO takes no schema.
        statement.parts["old_name"] = self._index_in_schema(model, old_name)
        return statement

    def alter_db_table(self, model, old_db_table, new_db_table):
        old_schema, old_name = split_table(old_db_table)
        new_schema, new_name = split_table(new_db_table)
        if old_schema == new_schema:
            if old_name != new_name:
                # RENAME TO takes a bare name; the table stays in its schema.
                self.execute(
                    f"ALTER TABLE {self.quote_name(old_db_table)} "
                    f"RENAME TO {self.quote_name(new_name)}"
                )
        else:
            target = new_schema or "public"
            moved = old_db_table if old_schema else self.quote_name(old_name)
            self.execute(f"ALTER TABLE {moved} SET SCHEMA {self.quote_name(target)}")
            if old_name != new_name:
                in_target = f"{self.quote_name(target)}.{self.quote_name(old_name)}"
                self.execute(f"ALTER TABLE {in_target} RENAME TO {self.quote_name(new_name)}")
        for statement in self.deferred_sql:
            if hasattr(statement, "rename_table_references"):
                statement.rename_table_references(old_db_table, new_db_table)
