"""case lifecycle: deadlines, interventions, next meeting, long-term track, erasure

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("cases", sa.Column("next_meeting_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "cases",
        sa.Column("long_term", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    )
    op.add_column("cases", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "case_deadlines",
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("met_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_deadlines_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("case_id", "kind", name=op.f("pk_case_deadlines")),
    )
    op.create_index(op.f("ix_case_deadlines_due_on"), "case_deadlines", ["due_on"])
    op.create_table(
        "case_interventions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("track", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=32), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("cancel_reason", sa.String(length=32), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_interventions_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_interventions")),
        sa.UniqueConstraint("workflow_id", name=op.f("uq_case_interventions_workflow_id")),
    )
    op.create_index(op.f("ix_case_interventions_case_id"), "case_interventions", ["case_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_case_interventions_case_id"), table_name="case_interventions")
    op.drop_table("case_interventions")
    op.drop_index(op.f("ix_case_deadlines_due_on"), table_name="case_deadlines")
    op.drop_table("case_deadlines")
    op.drop_column("cases", "erased_at")
    op.drop_column("cases", "long_term")
    op.drop_column("cases", "next_meeting_at")
