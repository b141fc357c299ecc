"""rendition table; blob.phash

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("blob") as batch:
        batch.add_column(sa.Column("phash", sa.BigInteger(), nullable=True))
    op.create_table(
        "rendition",
        sa.Column("source_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("spec", sa.String(length=64), nullable=False),
        sa.Column("encoder", sa.Integer(), nullable=False),
        sa.Column("result_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_sha256"], ["blob.sha256"], name=op.f("fk_rendition_source_sha256_blob"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["result_sha256"], ["blob.sha256"], name=op.f("fk_rendition_result_sha256_blob")),
        sa.PrimaryKeyConstraint("source_sha256", "spec", "encoder", name=op.f("pk_rendition")),
    )
    op.create_index(op.f("ix_rendition_result_sha256"), "rendition", ["result_sha256"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rendition_result_sha256"), table_name="rendition")
    op.drop_table("rendition")
    with op.batch_alter_table("blob") as batch:
        batch.drop_column("phash")
