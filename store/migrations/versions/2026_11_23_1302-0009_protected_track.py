"""meeting outcomes, follow-up meetings, agreed next steps and the protected track

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 13:02:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "meetings",
        sa.Column("kind", sa.String(length=16), server_default="joint", nullable=False),
    )
    op.add_column("meetings", sa.Column("held_by", sa.String(length=16), nullable=True))
    op.add_column("violence_disclosures", sa.Column("meeting_id", sa.Uuid(), nullable=True))
    op.add_column(
        "violence_disclosures", sa.Column("asked_by", sa.String(length=16), nullable=True)
    )
    op.create_foreign_key(
        op.f("fk_violence_disclosures_meeting_id_meetings"),
        "violence_disclosures",
        "meetings",
        ["meeting_id"],
        ["id"],
    )
    op.add_column(
        "case_interventions",
        sa.Column("protected", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_table(
        "agreed_next_steps",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("track", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("intervention_id", sa.Uuid(), nullable=True),
        sa.Column("agreed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_agreed_next_steps_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_agreed_next_steps_meeting_id_meetings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agreed_next_steps")),
    )
    op.create_index(op.f("ix_agreed_next_steps_case_id"), "agreed_next_steps", ["case_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_agreed_next_steps_case_id"), table_name="agreed_next_steps")
    op.drop_table("agreed_next_steps")
    op.drop_column("case_interventions", "protected")
    op.drop_constraint(
        op.f("fk_violence_disclosures_meeting_id_meetings"),
        "violence_disclosures",
        type_="foreignkey",
    )
    op.drop_column("violence_disclosures", "asked_by")
    op.drop_column("violence_disclosures", "meeting_id")
    op.drop_column("meetings", "held_by")
    op.drop_column("meetings", "kind")
