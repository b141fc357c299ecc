"""blob.data: small blobs stored in their row

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("blob") as batch:
        batch.add_column(sa.Column("data", sa.LargeBinary(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # uploads are mostly compressed formats: skip TOAST's compression attempt
        op.execute("ALTER TABLE blob ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    with op.batch_alter_table("blob") as batch:
        batch.drop_column("data")
