"""send-time rules: a workspace's countries for SMS and voice, the customer's last
inbound message per conversation (the customer-service window), and on messages their
SMS segment count and provider message tag

Revision ID: 0008_send_rules
Revises: 0007_inbox
"""

import sqlalchemy as sa
from alembic import op

from chat.db.types import UTCDateTime

revision = "0008_send_rules"
down_revision = "0007_inbox"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("workspaces", sa.Column("send_countries", sa.JSON(), nullable=True))
    op.add_column(
        "conversations", sa.Column("last_inbound_at", UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column("messages", sa.Column("segments", sa.Integer(), nullable=True))
    op.add_column("messages", sa.Column("message_tag", sa.String(length=40), nullable=True))
    # Conversations that already have customer messages: their window starts at the
    # latest of them.
    op.execute(
        "UPDATE conversations SET last_inbound_at = ("
        " SELECT max(m.created_at) FROM messages m"
        " WHERE m.conversation_id = conversations.id AND m.direction = 'inbound')"
    )


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+ and PostgreSQL): a batch rebuild of conversations
    # on SQLite would lose the expression index ix_conversations_activity.
    for table, column in (
        ("messages", "message_tag"),
        ("messages", "segments"),
        ("conversations", "last_inbound_at"),
        ("workspaces", "send_countries"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
