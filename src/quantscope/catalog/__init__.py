"""The catalog (SQLAlchemy Core schema, alembic migrations) and the Repository handle."""

from ._repository import CONFIG_NAME, SCHEMA_HEAD, ImageRegistration, Repository, plate_folder

__all__ = ["CONFIG_NAME", "SCHEMA_HEAD", "ImageRegistration", "Repository", "plate_folder"]
