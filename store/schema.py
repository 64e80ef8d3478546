"""The record store's tables: the organisation's memory of each case."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: DateTime(timezone=True), dict[str, Any]: JSONB}


class Unit(Base):
    """An organisational unit (e.g. a home-care group) that cases belong to."""

    __tablename__ = "units"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Employee(Base):
    """The only place where a person's identity meets the pseudonym used everywhere else."""

    __tablename__ = "employees"

    pseudonym: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Keyed hash of the personal identity number: lets us find the employee again
    # without storing the number in plain text.
    pin_lookup: Mapped[str | None] = mapped_column(String(64), unique=True)
    pin_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    erased_at: Mapped[datetime | None]


class Case(Base):
    """The projection of a case workflow that the API lists and filters."""

    __tablename__ = "cases"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(64), unique=True)
    employee_pseudonym: Mapped[uuid.UUID] = mapped_column(ForeignKey("employees.pseudonym"))
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"), index=True)
    trigger: Mapped[str] = mapped_column(String(32))
    stage: Mapped[str] = mapped_column(String(32), index=True)
    policy_id: Mapped[str] = mapped_column(String(32), server_default="se-default")
    policy_version: Mapped[int] = mapped_column(Integer, server_default="1")
    sick_start: Mapped[date | None]
    expected_end: Mapped[date | None]
    overdue: Mapped[bool] = mapped_column(Boolean, server_default=false(), index=True)
    next_deadline_kind: Mapped[str | None] = mapped_column(String(64))
    next_deadline_on: Mapped[date | None]
    relapse_count: Mapped[int] = mapped_column(Integer, server_default="0")
    outcome: Mapped[str | None] = mapped_column(String(32))
    opened_at: Mapped[datetime]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
    closed_at: Mapped[datetime | None]


class CaseConsent(Base):
    """The employee's current consent per outside party; it gates who may see the case."""

    __tablename__ = "case_consents"

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    party: Mapped[str] = mapped_column(String(32), primary_key=True)
    given: Mapped[bool] = mapped_column(Boolean)
    recorded_at: Mapped[datetime]


class CaseEvent(Base):
    """Append-only timeline of a case; `step_key` makes every write idempotent."""

    __tablename__ = "case_events"
    __table_args__ = (UniqueConstraint("workflow_id", "step_key"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("cases.id"), index=True)
    workflow_id: Mapped[str] = mapped_column(String(64))
    step_key: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    recorded_at: Mapped[datetime] = mapped_column(server_default=func.now())
