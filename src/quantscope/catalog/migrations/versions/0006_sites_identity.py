"""Site numbers 1-based; the catalog records the repository (store) it belongs to.

Revision ID: 0006
Revises: 0005

* ``images.field`` was the 0-based field index; it becomes the 1-based site number that the
  microscope, the file names and every output use. Shifted in two steps (negated, then
  restored) so the (plate, row, column, field) unique constraint holds after every row.
* ``repository_identity``: one row, the id of the repository whose store this catalog
  describes (also written in its ``quantscope.toml``), so a catalog shared by mistake between
  two repositories is refused instead of silently adopted.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("UPDATE images SET field = -(field + 1) WHERE field IS NOT NULL")
    op.execute("UPDATE images SET field = -field WHERE field IS NOT NULL")
    op.create_table(
        "repository_identity",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("root", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repository_identity")),
    )


def downgrade() -> None:
    op.drop_table("repository_identity")
    op.execute("UPDATE images SET field = -(field - 1) WHERE field IS NOT NULL")
    op.execute("UPDATE images SET field = -field WHERE field IS NOT NULL")
