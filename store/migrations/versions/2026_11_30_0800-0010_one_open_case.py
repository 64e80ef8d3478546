"""one open case per employee: a partial unique index as the record store's backstop

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_FIND_DUPLICATES = (
    "SELECT employee_pseudonym, id, opened_at FROM cases WHERE closed_at IS NULL ORDER BY 1, 3"
)


def upgrade() -> None:
    # Earlier versions could open a second case for an employee under concurrent
    # referrals. Which of two open cases should stay is a coordinator's decision, so the
    # upgrade stops and says how to find them rather than close one of them itself.
    duplicates = op.get_bind().scalar(
        sa.text(
            "SELECT count(*) FROM (SELECT employee_pseudonym FROM cases WHERE closed_at IS NULL"
            " GROUP BY employee_pseudonym HAVING count(*) > 1) AS d"
        )
    )
    if duplicates:
        raise RuntimeError(
            f"{duplicates} employees have more than one open case; close the extra cases "
            "(list them with: " + _FIND_DUPLICATES + ") and run the migration again"
        )
    op.create_index(
        "uq_cases_one_open_per_employee",
        "cases",
        ["employee_pseudonym"],
        unique=True,
        postgresql_where=sa.text("closed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_cases_one_open_per_employee", table_name="cases")
