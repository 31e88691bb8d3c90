"""Alembic environment shared by every service.

The caller (shared.migrate.upgrade) hands over an open connection in
`config.attributes["connection"]`; version directories are the shared branch plus
the service's own.
"""
from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
