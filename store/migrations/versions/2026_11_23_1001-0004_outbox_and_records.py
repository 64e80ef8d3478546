"""outbox and records: contacts, notifications, meetings, screenings, append-only timeline

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 10:01:00
"""

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A trigger, not privileges: the embedded stack connects as the owner (a superuser), whom
# REVOKE does not bind. A trigger binds every role, owner included.
APPEND_ONLY_FUNCTION = """
CREATE FUNCTION case_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'case_events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def _timestamps(*names: str) -> list[sa.Column[datetime]]:
    return [
        sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)
        for name in names
    ]


def upgrade() -> None:
    op.create_table(
        "unit_contacts",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=2048), nullable=False),
        *_timestamps("created_at"),
        sa.CheckConstraint(
            "role IN ('manager', 'coordinator', 'fk_officer', 'fhv')",
            name=op.f("ck_unit_contacts_role"),
        ),
        sa.CheckConstraint(
            "channel IN ('email', 'webhook')", name=op.f("ck_unit_contacts_channel")
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name=op.f("fk_unit_contacts_unit_code_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_contacts")),
        sa.UniqueConstraint(
            "unit_code", "role", "channel", "address", name=op.f("uq_unit_contacts_unit_code")
        ),
    )
    op.create_index(op.f("ix_unit_contacts_unit_code"), "unit_contacts", ["unit_code"])

    op.create_table(
        "employee_contacts",
        sa.Column("employee_pseudonym", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("address_encrypted", sa.LargeBinary(), nullable=False),
        *_timestamps("updated_at"),
        sa.CheckConstraint(
            "channel IN ('email', 'webhook')", name=op.f("ck_employee_contacts_channel")
        ),
        sa.ForeignKeyConstraint(
            ["employee_pseudonym"],
            ["employees.pseudonym"],
            name=op.f("fk_employee_contacts_employee_pseudonym_employees"),
        ),
        sa.PrimaryKeyConstraint("employee_pseudonym", name=op.f("pk_employee_contacts")),
    )

    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("delivery_key", sa.String(length=200), nullable=False),
        sa.Column("notification_type", sa.String(length=40), nullable=False),
        sa.Column("recipient_role", sa.String(length=16), nullable=False),
        sa.Column("unit_contact_id", sa.BigInteger(), nullable=True),
        sa.Column("employee_pseudonym", sa.Uuid(), nullable=True),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("deadline_kind", sa.String(length=64), nullable=True),
        sa.Column("meeting_id", sa.Uuid(), nullable=True),
        sa.Column("meeting_starts_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("meeting_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("meeting_sequence", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        *_timestamps("next_attempt_at"),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        *_timestamps("created_at", "updated_at"),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'delivered', 'dead_letter', 'no_recipient')",
            name=op.f("ck_notifications_status"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_notifications_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["employee_pseudonym"],
            ["employees.pseudonym"],
            name=op.f("fk_notifications_employee_pseudonym_employees"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_contact_id"],
            ["unit_contacts.id"],
            name=op.f("fk_notifications_unit_contact_id_unit_contacts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("delivery_key", name=op.f("uq_notifications_delivery_key")),
    )
    op.create_index(op.f("ix_notifications_case_id"), "notifications", ["case_id"])
    op.create_index(op.f("ix_notifications_idempotency_key"), "notifications", ["idempotency_key"])
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])

    op.create_table(
        "meetings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("step_key", sa.String(length=128), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sequence", sa.Integer(), server_default="0", nullable=False),
        sa.Column("status", sa.String(length=16), server_default="booked", nullable=False),
        sa.Column("reinforced_support", sa.Boolean(), nullable=True),
        *_timestamps("created_at"),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_meetings_case_id_cases")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meetings")),
        sa.UniqueConstraint("workflow_id", "step_key", name=op.f("uq_meetings_workflow_id")),
    )
    op.create_index(op.f("ix_meetings_case_id"), "meetings", ["case_id"])
    op.create_table(
        "meeting_participants",
        sa.Column("meeting_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("attended", sa.Boolean(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_meeting_participants_meeting_id_meetings"),
        ),
        sa.PrimaryKeyConstraint("meeting_id", "role", name=op.f("pk_meeting_participants")),
    )

    op.create_table(
        "screenings",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("step_key", sa.String(length=128), nullable=False),
        sa.Column("instrument_id", sa.String(length=64), nullable=False),
        sa.Column("instrument_version", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("band", sa.String(length=32), nullable=False),
        sa.Column("risk_level", sa.String(length=16), nullable=False),
        sa.Column("administered_at", sa.DateTime(timezone=True), nullable=False),
        *_timestamps("recorded_at"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_screenings_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screenings")),
        sa.UniqueConstraint("workflow_id", "step_key", name=op.f("uq_screenings_workflow_id")),
    )
    op.create_index(op.f("ix_screenings_case_id"), "screenings", ["case_id"])
    op.create_table(
        "violence_disclosures",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sa.String(length=64), nullable=False),
        sa.Column("step_key", sa.String(length=128), nullable=False),
        sa.Column("disclosed_at", sa.DateTime(timezone=True), nullable=False),
        *_timestamps("recorded_at"),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_violence_disclosures_case_id_cases")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_violence_disclosures")),
        sa.UniqueConstraint(
            "workflow_id", "step_key", name=op.f("uq_violence_disclosures_workflow_id")
        ),
    )
    op.create_index(op.f("ix_violence_disclosures_case_id"), "violence_disclosures", ["case_id"])

    op.execute(APPEND_ONLY_FUNCTION)
    op.execute(
        "CREATE TRIGGER case_events_no_update_or_delete BEFORE UPDATE OR DELETE ON case_events "
        "FOR EACH ROW EXECUTE FUNCTION case_events_append_only()"
    )
    op.execute(
        "CREATE TRIGGER case_events_no_truncate BEFORE TRUNCATE ON case_events "
        "FOR EACH STATEMENT EXECUTE FUNCTION case_events_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS case_events_no_truncate ON case_events")
    op.execute("DROP TRIGGER IF EXISTS case_events_no_update_or_delete ON case_events")
    op.execute("DROP FUNCTION IF EXISTS case_events_append_only()")
    op.drop_table("violence_disclosures")
    op.drop_table("screenings")
    op.drop_table("meeting_participants")
    op.drop_table("meetings")
    op.drop_table("notifications")
    op.drop_table("employee_contacts")
    op.drop_table("unit_contacts")
