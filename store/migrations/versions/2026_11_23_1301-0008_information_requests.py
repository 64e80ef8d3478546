"""information requests: their projection, and contacts for the parties asked

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 13:01:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_ROLES = ("manager", "coordinator", "fk_officer", "fhv")
_NEW_ROLES = (*_OLD_ROLES, "healthcare", "social_services", "arbetsformedlingen")


def _role_check(roles: tuple[str, ...]) -> str:
    return f"role IN ({', '.join(repr(role) for role in roles)})"


def upgrade() -> None:
    op.create_table(
        "case_information_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("party", sa.String(length=32), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=True),
        sa.Column("cancel_reason", sa.String(length=32), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_information_requests_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_information_requests")),
        sa.UniqueConstraint("workflow_id", name=op.f("uq_case_information_requests_workflow_id")),
    )
    op.create_index(
        op.f("ix_case_information_requests_case_id"), "case_information_requests", ["case_id"]
    )
    # "arbetsformedlingen" is longer than the 16 characters the role columns had.
    op.alter_column(
        "unit_contacts", "role", type_=sa.String(length=32), existing_type=sa.String(length=16)
    )
    op.alter_column(
        "notifications",
        "recipient_role",
        type_=sa.String(length=32),
        existing_type=sa.String(length=16),
    )
    op.drop_constraint(op.f("ck_unit_contacts_role"), "unit_contacts", type_="check")
    op.create_check_constraint(
        op.f("ck_unit_contacts_role"), "unit_contacts", _role_check(_NEW_ROLES)
    )


def downgrade() -> None:
    # Contacts of the new roles, and their notifications, cannot stay under the old schema.
    added = [role for role in _NEW_ROLES if role not in _OLD_ROLES]
    notifications = sa.table("notifications", sa.column("recipient_role", sa.String))
    contacts = sa.table("unit_contacts", sa.column("role", sa.String))
    op.execute(sa.delete(notifications).where(notifications.c.recipient_role.in_(added)))
    op.execute(sa.delete(contacts).where(contacts.c.role.in_(added)))
    op.drop_constraint(op.f("ck_unit_contacts_role"), "unit_contacts", type_="check")
    op.create_check_constraint(
        op.f("ck_unit_contacts_role"), "unit_contacts", _role_check(_OLD_ROLES)
    )
    op.alter_column(
        "notifications",
        "recipient_role",
        type_=sa.String(length=16),
        existing_type=sa.String(length=32),
    )
    op.alter_column(
        "unit_contacts", "role", type_=sa.String(length=16), existing_type=sa.String(length=32)
    )
    op.drop_index(
        op.f("ix_case_information_requests_case_id"), table_name="case_information_requests"
    )
    op.drop_table("case_information_requests")
