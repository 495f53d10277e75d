"""canned_responses: saved replies agents insert in the inbox with /shortcut

Revision ID: 0010_inbox_web
Revises: 0007_inbox
"""

import sqlalchemy as sa
from alembic import op

from chat.db.types import UTCDateTime

revision = "0010_inbox_web"
down_revision = "0009_bots"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canned_responses",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("shortcut", sa.String(length=50), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "shortcut"),
    )
    with op.batch_alter_table("canned_responses", schema=None) as batch_op:
        batch_op.create_index(
            "ix_canned_responses_workspace_id", ["workspace_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("canned_responses")
