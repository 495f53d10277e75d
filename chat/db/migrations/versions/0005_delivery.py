"""delivery records: a deliveries table (provider message id unique per channel), the
provider's error code per attempt, and outbox lanes and claim tokens

Revision ID: 0005_delivery
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import chat.db.types

revision = "0005_delivery"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("channel_id", sa.String(length=40), nullable=False),
        sa.Column("channel_type", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=512), nullable=False),
        sa.Column("provider_message_id", sa.String(length=200), nullable=True),
        sa.Column("created_at", chat.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", chat.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["channel_id"], ["channels.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("message_id"),
        sa.UniqueConstraint(
            "channel_id", "provider_message_id", name="uq_deliveries_provider_id"
        ),
    )
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("error_code", sa.String(length=100), nullable=True))
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lane", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("claim", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("claim")
        batch_op.drop_column("lane")
    with op.batch_alter_table("delivery_attempts", schema=None) as batch_op:
        batch_op.drop_column("error_code")
    op.drop_table("deliveries")
