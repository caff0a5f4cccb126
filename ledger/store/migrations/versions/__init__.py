"""Migration scripts, applied in revision order by Alembic."""
