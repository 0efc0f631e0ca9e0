"""Alembic environment: the engine is handed in by cortex_server.db.migrate."""

from alembic import context

from cortex_server.db.models import Base

engine = context.config.attributes["engine"]
with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table rebuilds for ALTER
        compare_type=True,
    )
    context.run_migrations()
