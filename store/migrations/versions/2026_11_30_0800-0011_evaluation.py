"""evaluation and the programme: coded sex and birth year, managers and their training,
APT dialogues, and outbox rows that belong to no case

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("employees", sa.Column("sex", sa.String(length=1), nullable=True))
    op.add_column("employees", sa.Column("birth_year", sa.SmallInteger(), nullable=True))
    op.create_check_constraint("sex", "employees", "sex IN ('F', 'M')")
    # Training invitations and programme reminders go through the outbox but are no case's.
    op.alter_column("notifications", "case_id", existing_type=sa.Uuid(), nullable=True)
    op.create_table(
        "managers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.BigInteger(), nullable=False),
        sa.Column("appointed_on", sa.Date(), nullable=False),
        sa.Column("left_on", sa.Date(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name=op.f("fk_managers_unit_code_units")
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["unit_contacts.id"], name=op.f("fk_managers_contact_id_unit_contacts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_managers")),
        sa.UniqueConstraint("contact_id", name=op.f("uq_managers_contact_id")),
    )
    op.create_index(op.f("ix_managers_unit_code"), "managers", ["unit_code"])
    op.create_table(
        "training_rounds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("year", sa.SmallInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_rounds")),
    )
    op.create_index(op.f("ix_training_rounds_year"), "training_rounds", ["year"])
    op.create_table(
        "training_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("round_id", sa.Uuid(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sequence", sa.Integer(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "ends_at > starts_at", name=op.f("ck_training_sessions_ends_after_start")
        ),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["training_rounds.id"],
            name=op.f("fk_training_sessions_round_id_training_rounds"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_training_sessions")),
    )
    op.create_index(op.f("ix_training_sessions_round_id"), "training_sessions", ["round_id"])
    op.create_table(
        "training_attendance",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("manager_id", sa.Uuid(), nullable=False),
        sa.Column("invited_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attended", sa.Boolean(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["manager_id"], ["managers.id"], name=op.f("fk_training_attendance_manager_id_managers")
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name=op.f("fk_training_attendance_session_id_training_sessions"),
        ),
        sa.PrimaryKeyConstraint("session_id", "manager_id", name=op.f("pk_training_attendance")),
    )
    op.create_table(
        "apt_dialogues",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=False),
        sa.Column("held_on", sa.Date(), nullable=False),
        sa.Column("themes", sa.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("participants > 0", name=op.f("ck_apt_dialogues_participants")),
        sa.ForeignKeyConstraint(
            ["unit_code"], ["units.code"], name=op.f("fk_apt_dialogues_unit_code_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_apt_dialogues")),
    )
    op.create_index(op.f("ix_apt_dialogues_unit_code"), "apt_dialogues", ["unit_code"])


def downgrade() -> None:
    op.drop_table("apt_dialogues")
    op.drop_table("training_attendance")
    op.drop_table("training_sessions")
    op.drop_table("training_rounds")
    op.drop_table("managers")
    op.execute("DELETE FROM notifications WHERE case_id IS NULL")
    op.alter_column("notifications", "case_id", existing_type=sa.Uuid(), nullable=False)
    op.drop_constraint(op.f("ck_employees_sex"), "employees", type_="check")
    op.drop_column("employees", "birth_year")
    op.drop_column("employees", "sex")
