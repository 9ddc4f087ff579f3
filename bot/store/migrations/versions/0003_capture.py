"""Live capture: channel messages as their events arrive, the bot's memberships, and the stretches covered.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    false = sa.false()
    op.create_table(
        "captured_messages",
        sa.Column("channel_id", sa.String(32), primary_key=True),
        sa.Column("ts", sa.String(32), primary_key=True),
        sa.Column("posted_at", tz, nullable=False),
        sa.Column("thread_ts", sa.String(32)),
        sa.Column("user_id", sa.String(32)),
        sa.Column("bot_id", sa.String(32)),
        sa.Column("subtype", sa.String(64)),
        sa.Column("text", sa.Text(), nullable=False, server_default=""),
        sa.Column("redactions", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("reply_count", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("edited", sa.Boolean(), nullable=False, server_default=false),
        sa.Column("content_version", sa.String(32)),
        sa.Column("pinned", sa.Boolean(), nullable=False, server_default=false),
        sa.Column("pin_version", sa.String(32)),
        sa.Column("reactions", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("deleted", sa.Boolean(), nullable=False, server_default=false),
        sa.Column("captured_at", tz, nullable=False),
    )
    op.create_index("ix_captured_messages_posted", "captured_messages", ["channel_id", "posted_at"])
    op.create_index("ix_captured_messages_thread", "captured_messages", ["channel_id", "thread_ts"])
    op.create_table(
        "capture_channels",
        sa.Column("channel_id", sa.String(32), primary_key=True),
        sa.Column("member", sa.Boolean(), nullable=False),
        sa.Column("version", sa.String(32), nullable=False),
        sa.Column("updated_at", tz, nullable=False),
    )
    op.create_table(
        "capture_spans",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("channel_id", sa.String(32), nullable=False),
        sa.Column("replica", sa.String(200), nullable=False),
        sa.Column("started_at", tz, nullable=False),
        sa.Column("last_seen_at", tz, nullable=False),
        sa.Column("closed", sa.Boolean(), nullable=False, server_default=false),
    )
    op.create_index("ix_capture_spans_channel", "capture_spans", ["channel_id", "last_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_capture_spans_channel", table_name="capture_spans")
    op.drop_table("capture_spans")
    op.drop_table("capture_channels")
    op.drop_index("ix_captured_messages_thread", table_name="captured_messages")
    op.drop_index("ix_captured_messages_posted", table_name="captured_messages")
    op.drop_table("captured_messages")
