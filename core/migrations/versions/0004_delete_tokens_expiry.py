"""paste_file.delete_token_hash and paste_file.expires

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("paste_file") as batch:
        batch.add_column(sa.Column("delete_token_hash", sa.LargeBinary(length=32), nullable=True))
        batch.add_column(sa.Column("expires", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_paste_file_expires", "paste_file", ["expires"])


def downgrade() -> None:
    op.drop_index("ix_paste_file_expires", table_name="paste_file")
    with op.batch_alter_table("paste_file") as batch:
        batch.drop_column("expires")
        batch.drop_column("delete_token_hash")
