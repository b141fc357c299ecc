"""paste ids never reused; only permanent pastes are shared by repeats

A short link is a permutation of the paste's id.  SQLite hands out the
largest rowid again once that row is deleted unless the table is declared
AUTOINCREMENT, so the newest paste's short link went to the next upload.
PostgreSQL's identity never goes back.

The same bytes under the same name were one paste whatever its expiry, so a
repeat could keep someone else's expiring paste alive.  Now only pastes
without an expiry are shared (a partial unique index); an expiring upload
is always a paste of its own over the same blob.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PERMANENT = sa.text("expires IS NULL")
EXPIRING = sa.text("expires IS NOT NULL")


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # on SQLite the rebuilt table copies every row with its id, which also
    # starts sqlite_sequence at the largest id there is
    kwargs = {"recreate": "always", "table_kwargs": {"sqlite_autoincrement": True}} if sqlite else {}
    with op.batch_alter_table("paste_file", **kwargs) as batch:
        batch.drop_constraint("uq_paste_file_blob_filename", type_="unique")
    op.create_index(
        "uq_paste_file_blob_filename_permanent", "paste_file", ["blob_sha256", "filename"], unique=True,
        sqlite_where=PERMANENT, postgresql_where=PERMANENT,
    )
    # the expiry index holds expiring pastes only: a lookup of kept ones
    # (expires IS NULL) would otherwise be planned on it, a scan of them all
    op.drop_index("ix_paste_file_expires", table_name="paste_file")
    op.create_index("ix_paste_file_expires", "paste_file", ["expires"], sqlite_where=EXPIRING,
                    postgresql_where=EXPIRING)


def downgrade() -> None:
    # expiring repeats may now share a name and bytes: keep the oldest
    op.execute(
        "DELETE FROM paste_file WHERE EXISTS (SELECT 1 FROM paste_file AS p WHERE p.blob_sha256 = paste_file.blob_sha256"
        " AND p.filename = paste_file.filename AND p.id < paste_file.id)"
    )
    op.drop_index("uq_paste_file_blob_filename_permanent", table_name="paste_file")
    op.drop_index("ix_paste_file_expires", table_name="paste_file")
    op.create_index("ix_paste_file_expires", "paste_file", ["expires"])
    sqlite = op.get_bind().dialect.name == "sqlite"
    kwargs = {"recreate": "always", "table_kwargs": {"sqlite_autoincrement": False}} if sqlite else {}
    with op.batch_alter_table("paste_file", **kwargs) as batch:
        batch.create_unique_constraint("uq_paste_file_blob_filename", ["blob_sha256", "filename"])
