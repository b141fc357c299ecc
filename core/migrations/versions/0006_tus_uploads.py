"""resumable uploads (tus): one row per upload in progress

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tus_upload",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=True),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("meta", sa.String(4096), nullable=False),
        sa.Column("hash_state", sa.LargeBinary(), nullable=False),
        sa.Column("head", sa.LargeBinary(), nullable=False),
        sa.Column("store_key", sa.String(1024), nullable=True),
        sa.Column("store_upload_id", sa.String(1024), nullable=True),
        sa.Column("parts", sa.String(), nullable=False),
        sa.Column("tail", sa.LargeBinary(), nullable=True),
        sa.Column("concat", sa.String(16), nullable=True),
        sa.Column("concat_parts", sa.String(), nullable=True),
        sa.Column("filehash", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tus_upload")),
    )
    op.create_index(op.f("ix_tus_upload_expires"), "tus_upload", ["expires"])


def downgrade() -> None:
    op.drop_index(op.f("ix_tus_upload_expires"), table_name="tus_upload")
    op.drop_table("tus_upload")
