"""the inbox lists conversations by last activity: an index on (workspace_id,
coalesce(last_message_at, created_at), id), so a page reads in order instead of sorting
every conversation of the workspace

Revision ID: 0007_inbox
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_inbox"
down_revision = "0006_principals"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_conversations_activity",
        "conversations",
        ["workspace_id", sa.text("coalesce(last_message_at, created_at)"), "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_conversations_activity", table_name="conversations")
