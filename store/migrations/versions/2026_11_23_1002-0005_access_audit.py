"""access audit: append-only record of sensitive reads and refused attempts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 10:02:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Raising in a trigger makes the table append-only for every role, the API's own included.
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION access_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'access_audit is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$
"""


def upgrade() -> None:
    op.create_table(
        "access_audit",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("what", sa.String(length=64), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_audit")),
    )
    op.create_index(op.f("ix_access_audit_case_id"), "access_audit", ["case_id"], unique=False)
    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(
        "CREATE TRIGGER access_audit_no_update_delete BEFORE UPDATE OR DELETE ON access_audit "
        "FOR EACH ROW EXECUTE FUNCTION access_audit_append_only()"
    )
    op.execute(
        "CREATE TRIGGER access_audit_no_truncate BEFORE TRUNCATE ON access_audit "
        "FOR EACH STATEMENT EXECUTE FUNCTION access_audit_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER access_audit_no_truncate ON access_audit")
    op.execute("DROP TRIGGER access_audit_no_update_delete ON access_audit")
    op.execute("DROP FUNCTION access_audit_append_only()")
    op.drop_index(op.f("ix_access_audit_case_id"), table_name="access_audit")
    op.drop_table("access_audit")
