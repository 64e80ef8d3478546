"""joint-meeting teams and their units

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 13:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "meeting_teams",
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("starts_at", sa.Time(), nullable=False),
        sa.Column("meeting_minutes", sa.Integer(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("anchor_on", sa.Date(), nullable=False),
        sa.Column("lead_hours", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("weekday BETWEEN 1 AND 7", name=op.f("ck_meeting_teams_weekday")),
        sa.CheckConstraint(
            "meeting_minutes BETWEEN 15 AND 240", name=op.f("ck_meeting_teams_meeting_minutes")
        ),
        sa.CheckConstraint("capacity BETWEEN 1 AND 12", name=op.f("ck_meeting_teams_capacity")),
        sa.CheckConstraint(
            "lead_hours BETWEEN 0 AND 288", name=op.f("ck_meeting_teams_lead_hours")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_meeting_teams")),
    )
    op.create_table(
        "meeting_team_units",
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("team_code", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_code"],
            ["meeting_teams.code"],
            name=op.f("fk_meeting_team_units_team_code_meeting_teams"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name=op.f("fk_meeting_team_units_unit_code_units")
        ),
        sa.PrimaryKeyConstraint("unit_code", name=op.f("pk_meeting_team_units")),
    )
    op.create_index(op.f("ix_meeting_team_units_team_code"), "meeting_team_units", ["team_code"])


def downgrade() -> None:
    op.drop_index(op.f("ix_meeting_team_units_team_code"), table_name="meeting_team_units")
    op.drop_table("meeting_team_units")
    op.drop_table("meeting_teams")
