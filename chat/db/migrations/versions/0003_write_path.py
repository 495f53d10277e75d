"""one open conversation per contact and channel; scheduled messages have no seq yet

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_OPEN = sa.text("status <> 'resolved'")


def upgrade() -> None:
    # Conversations opened twice by the old race: keep the newest open, resolve the rest.
    op.execute(
        """
        UPDATE conversations SET status = 'resolved'
        WHERE status <> 'resolved' AND EXISTS (
            SELECT 1 FROM conversations AS newer
            WHERE newer.workspace_id = conversations.workspace_id
              AND newer.contact_id = conversations.contact_id
              AND newer.channel_id = conversations.channel_id
              AND newer.status <> 'resolved'
              AND newer.id > conversations.id
        )
        """
    )
    op.create_index(
        "uq_conversations_open", "conversations", ["workspace_id", "contact_id", "channel_id"],
        unique=True, postgresql_where=_OPEN, sqlite_where=_OPEN,
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=True)
    # Messages still scheduled leave the conversation's order until they are released.
    op.execute("UPDATE messages SET seq = NULL WHERE status = 'scheduled'")


def downgrade() -> None:
    # Scheduled messages take a place at the end again, as before this revision.
    conn = op.get_bind()
    rows = conn.execute(
        sa.text("SELECT id, conversation_id FROM messages WHERE seq IS NULL ORDER BY created_at, id")
    ).all()
    for message_id, conversation_id in rows:
        seq = conn.execute(
            sa.text("UPDATE conversations SET last_seq = last_seq + 1 WHERE id = :c RETURNING last_seq"),
            {"c": conversation_id},
        ).scalar_one()
        conn.execute(sa.text("UPDATE messages SET seq = :s WHERE id = :m"), {"s": seq, "m": message_id})
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.Integer(), nullable=False)
    op.drop_index("uq_conversations_open", table_name="conversations")
