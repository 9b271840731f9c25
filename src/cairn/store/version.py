"""The schema revision this code expects (the newest Alembic migration; a test checks it).

Kept apart from the engine so readers that never import SQLAlchemy can check it too."""

SCHEMA_HEAD = "0012"
