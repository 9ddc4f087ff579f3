"""Drafts, their edits, prompts, claims and cursors.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    tz = sa.DateTime(timezone=True)
    op.create_table(
        "drafts",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("incident_key", sa.String(32), nullable=False),
        sa.Column("channel_id", sa.String(32)),
        sa.Column("preview_ts", sa.String(32)),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("body", sa.Text()),
        sa.Column("body_version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("requested_by", sa.String(32)),
        sa.Column("created_at", tz, nullable=False),
        sa.Column("updated_at", tz, nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("publishing_by", sa.String(32)),
        sa.Column("publish_started_at", tz),
        sa.Column("published_body_version", sa.Integer()),
        sa.Column("page_id", sa.String(64)),
        sa.Column("page_url", sa.Text()),
        sa.Column("page_version", sa.Integer()),
        sa.Column("published_by", sa.String(32)),
        sa.Column("published_at", tz),
    )
    op.create_table(
        "draft_edits",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "draft_id",
            sa.String(64),
            sa.ForeignKey("drafts.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("section", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("user_id", sa.String(32), nullable=False),
        sa.Column("at", tz, nullable=False),
    )
    op.create_table(
        "prompts",
        sa.Column("incident_id", sa.String(64), primary_key=True),
        sa.Column("channel_id", sa.String(32)),
        sa.Column("message_ts", sa.String(32)),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("created_at", tz, nullable=False),
    )
    op.create_table(
        "claims",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("created_at", tz, nullable=False),
    )
    op.create_table(
        "cursors",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", tz, nullable=False),
    )


def downgrade() -> None:
    for table in ("cursors", "claims", "prompts", "draft_edits", "drafts"):
        op.drop_table(table)
