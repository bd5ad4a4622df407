"""The console in SQL: a row per referral and per theme of each turn, and the conversation's folded
searchable text, so that partner, theme and text filters, statistics and unmet needs are queries
with indexes instead of reading every turn's JSON.

Existing turns are backfilled here, a page of conversations at a time, with the functions the
store uses for new turns (assistant/store.py: referral_rows, theme_rows, search_text).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from assistant.store import KEY_CHARS, referral_rows, search_text, theme_rows

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PAGE = 1000  # conversations per backfill step


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("search_text", sa.Text(), nullable=False, server_default=""))
    referrals = op.create_table(
        "turn_referrals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("turn_id", sa.Integer(), sa.ForeignKey("turns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("conversation_id", sa.String(36), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("partner", sa.String(KEY_CHARS), nullable=False),
    )
    themes = op.create_table(
        "turn_themes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("turn_id", sa.Integer(), sa.ForeignKey("turns.id", ondelete="CASCADE"), nullable=False),
        sa.Column("conversation_id", sa.String(36), sa.ForeignKey("conversations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("theme", sa.String(KEY_CHARS), nullable=False),
    )
    for table in ("turn_referrals", "turn_themes"):
        op.create_index(f"ix_{table}_turn_id", table, ["turn_id"])
        op.create_index(f"ix_{table}_conversation_id", table, ["conversation_id"])
    op.create_index("ix_turn_referrals_partner_conversation", "turn_referrals", ["partner", "conversation_id"])
    op.create_index("ix_turn_referrals_day_partner", "turn_referrals", ["day", "partner"])
    op.create_index("ix_turn_themes_theme_conversation", "turn_themes", ["theme", "conversation_id"])
    op.create_index("ix_turns_kind", "turns", ["kind"])
    _backfill(op.get_bind(), referrals, themes)


def _backfill(connection, referrals: sa.Table, themes: sa.Table) -> None:
    conversations = sa.table("conversations", sa.column("id", sa.String), sa.column("profile", sa.JSON),
                             sa.column("search_text", sa.Text))
    turns = sa.table("turns", sa.column("id", sa.Integer), sa.column("conversation_id", sa.String),
                     sa.column("number", sa.Integer), sa.column("created_at", sa.DateTime), sa.column("message", sa.Text),
                     sa.column("referrals", sa.JSON), sa.column("themes", sa.JSON))
    after = ""
    while True:
        page = connection.execute(
            sa.select(conversations.c.id, conversations.c.profile).where(conversations.c.id > after)
            .order_by(conversations.c.id).limit(PAGE)
        ).all()
        if not page:
            return
        after = page[-1].id
        messages: dict[str, list[str]] = {c.id: [] for c in page}
        referral_values, theme_values = [], []
        for t in connection.execute(
            sa.select(turns).where(turns.c.conversation_id.in_(list(messages))).order_by(turns.c.conversation_id, turns.c.number)
        ):
            messages[t.conversation_id].append(t.message)
            keys = {"turn_id": t.id, "conversation_id": t.conversation_id}
            referral_values += [{**keys, "day": t.created_at.date(), **r} for r in referral_rows(t.referrals)]
            theme_values += [{**keys, **row} for row in theme_rows(t.themes)]
        if referral_values:
            connection.execute(referrals.insert(), referral_values)
        if theme_values:
            connection.execute(themes.insert(), theme_values)
        connection.execute(
            conversations.update().where(conversations.c.id == sa.bindparam("cid")).values(search_text=sa.bindparam("text")),
            [{"cid": c.id, "text": search_text(c.id, c.profile, messages[c.id])} for c in page],
        )


def downgrade() -> None:
    op.drop_index("ix_turns_kind", table_name="turns")
    op.drop_table("turn_themes")
    op.drop_table("turn_referrals")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("search_text")
