"""One turn number per conversation: concurrent messages used to get the same number.

Duplicates left by that bug are renumbered first (in the order they were stored), then a unique
index on (conversation_id, number) backs `Database.save_turn`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    connection = op.get_bind()
    duplicated = connection.execute(
        sa.text("SELECT conversation_id FROM turns GROUP BY conversation_id, number HAVING COUNT(*) > 1")
    ).scalars().all()
    for conversation_id in sorted(set(duplicated)):
        ids = connection.execute(
            sa.text("SELECT id FROM turns WHERE conversation_id = :c ORDER BY number, id"), {"c": conversation_id}
        ).scalars().all()
        for number, turn_id in enumerate(ids, start=1):
            connection.execute(sa.text("UPDATE turns SET number = :n WHERE id = :i"), {"n": number, "i": turn_id})
    existing = {index["name"] for index in sa.inspect(connection).get_indexes("turns")}
    if "ux_turns_conversation_number" not in existing:  # an adopted pre-migration database may have it
        op.create_index("ux_turns_conversation_number", "turns", ["conversation_id", "number"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_turns_conversation_number", table_name="turns")
