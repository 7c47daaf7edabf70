"""Alembic migrations of erp-sync's schema."""
