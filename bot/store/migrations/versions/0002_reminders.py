"""Draft reminders (how many, the last when) and leases (one watcher at a time across replicas).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    # batch: SQLite cannot add columns with every constraint in place; Alembic copies the table there.
    with op.batch_alter_table("drafts") as batch:
        batch.add_column(sa.Column("reminders_sent", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_reminder_at", tz))
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("expires_at", tz, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    with op.batch_alter_table("drafts") as batch:
        batch.drop_column("last_reminder_at")
        batch.drop_column("reminders_sent")
