"""blob and paste_file

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "blob",
        sa.Column("sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mimetype", sa.String(length=255), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_blob")),
    )
    op.create_table(
        "paste_file",
        sa.Column("id", BigId, sa.Identity(), nullable=False),
        sa.Column("filehash", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("blob_sha256", sa.LargeBinary(length=32), nullable=False),
        sa.Column("uploadtime", sa.DateTime(timezone=True), nullable=False),
        sa.Column("parent_id", BigId, nullable=True),
        sa.Column("resize_w", sa.Integer(), nullable=True),
        sa.Column("resize_h", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["blob_sha256"], ["blob.sha256"], name=op.f("fk_paste_file_blob_sha256_blob")),
        sa.ForeignKeyConstraint(["parent_id"], ["paste_file.id"], name=op.f("fk_paste_file_parent_id_paste_file")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_paste_file")),
        sa.UniqueConstraint("blob_sha256", "filename", name="uq_paste_file_blob_filename"),
        sa.UniqueConstraint("filehash", name=op.f("uq_paste_file_filehash")),
    )
    op.create_index("ix_paste_file_uploadtime", "paste_file", ["uploadtime"])
    op.create_index(op.f("ix_paste_file_parent_id"), "paste_file", ["parent_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_paste_file_parent_id"), table_name="paste_file")
    op.drop_index("ix_paste_file_uploadtime", table_name="paste_file")
    op.drop_table("paste_file")
    op.drop_table("blob")
