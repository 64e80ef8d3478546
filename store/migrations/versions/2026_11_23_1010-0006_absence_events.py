"""absence events from HR/payroll

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 10:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "absence_events",
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("employee_pseudonym", sa.Uuid(), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("start", sa.Date(), nullable=False),
        sa.Column("end", sa.Date(), nullable=True),
        sa.Column("extent", sa.Integer(), nullable=False),
        sa.Column("expected_end", sa.Date(), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("superseded_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["employee_pseudonym"],
            ["employees.pseudonym"],
            name=op.f("fk_absence_events_employee_pseudonym_employees"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name=op.f("fk_absence_events_unit_code_units")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_absence_events")),
    )
    op.create_index(
        "ix_absence_events_employee_start", "absence_events", ["employee_pseudonym", "start"]
    )


def downgrade() -> None:
    op.drop_index("ix_absence_events_employee_start", table_name="absence_events")
    op.drop_table("absence_events")
