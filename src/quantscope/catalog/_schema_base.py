"""The one SQLAlchemy ``MetaData`` every catalog table is declared on.

It sits below the schema modules so that they import in one direction only: ``_schema`` (the
core tables), ``_schema_analysis`` (analysis runs and artifacts) and ``_schema_bench``
(benchmark sets and runs) each import ``metadata`` from here, and ``_schema`` imports the other
two so that ``_schema.metadata`` holds every table (migrations compare against it).
"""

from sqlalchemy import MetaData

__all__ = ["metadata"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)
