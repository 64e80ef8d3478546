"""languages of contacts, a policy per unit, and deactivating units and contacts

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LANGUAGE_CHECK = "language IN ('sv', 'en')"  # store.schema.LANGUAGES


def upgrade() -> None:
    # Swedish unless the recipient chose English: notifications go in the recipient's language.
    for table in ("unit_contacts", "employee_contacts"):
        op.add_column(
            table, sa.Column("language", sa.String(length=2), server_default="sv", nullable=False)
        )
        op.create_check_constraint(op.f(f"ck_{table}_language"), table, LANGUAGE_CHECK)
    # The policy a new case of the unit takes a snapshot of (models.policy.POLICIES).
    op.add_column(
        "units",
        sa.Column("policy_id", sa.String(length=32), server_default="se-default", nullable=False),
    )
    # Deactivated, not deleted: cases and sent notifications keep pointing at them.
    op.add_column(
        "units", sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)
    )
    op.add_column(
        "unit_contacts",
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("unit_contacts", "active")
    op.drop_column("units", "active")
    op.drop_column("units", "policy_id")
    for table in ("unit_contacts", "employee_contacts"):
        op.drop_constraint(op.f(f"ck_{table}_language"), table, type_="check")
        op.drop_column(table, "language")
