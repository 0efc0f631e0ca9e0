"""The one DB layer: typed models, engine/session factory, Alembic migrations."""
