"""The command line that starts things: units, and later cases, imports and demos."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from datetime import date, datetime, time
from pathlib import Path

from rich.console import Console

from core import administration
from core.settings import Settings
from ingestion.csv_import import COLUMNS
from models.meetings import WEEKDAYS
from store.db import create_engine, create_sessionmaker
from store.schema import UNIT_CONTACT_ROLES

console = Console()


async def add_unit(settings: Settings, code: str, name: str, policy_id: str = "se-default") -> bool:
    """Register a unit; returns False when it already existed (nothing is changed then)."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            return await administration.create_unit(session, code, name, policy_id)
    finally:
        await engine.dispose()


async def change_unit(
    settings: Settings, code: str, name: str | None, policy_id: str | None, active: bool | None
) -> int:
    """Rename a unit, set its policy for new cases, or (de)activate it: as the admin API."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            unit = await administration.change_unit(
                session, code, name=name, policy_id=policy_id, active=active
            )
            console.print(
                f"unit {unit.code}: policy {unit.policy_id}, "
                f"{'active' if unit.active else 'deactivated'}"
            )
    except administration.NotFound as missing:
        console.print(f"[red]{missing}[/red]")
        return 2
    finally:
        await engine.dispose()
    return 0


async def import_absences(settings: Settings, source: Path) -> int:
    """Stream a payroll CSV through the ingestion path, with a progress bar and a summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from core.codec import KeyRing
    from core.identity import IdentityProtector
    from core.secrets import load_secrets
    from core.temporal import connect
    from ingestion.absences import AbsenceIngestion
    from ingestion.csv_import import MalformedFile, count_rows, import_file, rejected_path
    from models.deadlines import STOCKHOLM

    secrets = load_secrets(settings)
    engine = create_engine(settings)
    try:
        ingestion = AbsenceIngestion(
            create_sessionmaker(engine),
            await connect(settings, secrets),
            IdentityProtector(
                KeyRing.from_config(secrets.pin_encryption_keys), secrets.pin_lookup_key
            ),
            settings.temporal.task_queue,
            today=lambda: datetime.now(STOCKHOLM).date(),
        )
        columns = (
            *Progress.get_default_columns()[:1],
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("importing absences", total=count_rows(source))
            try:
                summary = await import_file(source, ingestion, lambda n: progress.advance(task, n))
            except MalformedFile as exc:
                console.print(f"[red]{source.name}: {exc}[/red]")
                return 2
    finally:
        await engine.dispose()
    if summary.resumed_from:
        console.print(f"resumed after row {summary.resumed_from}")
    console.print(
        f"accepted {summary.accepted}, duplicate {summary.duplicate}, rejected {summary.rejected}"
    )
    if summary.rejected:
        console.print(f"rejected rows (line, field, reason): {rejected_path(source)}")
    return 0


async def add_contact(
    settings: Settings, unit: str, role: str, channel: str, address: str, language: str = "sv"
) -> int:
    """Register a unit contact (idempotent); the address is not echoed, it is personal data."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            contact_id = await administration.add_contact(
                session,
                unit,
                role=role,  # type: ignore[arg-type]  # argparse choices checked it
                channel=channel,  # type: ignore[arg-type]
                address=address,
                language=language,  # type: ignore[arg-type]
            )
    except administration.Refused as refused:
        console.print(f"[red]{refused.field}: {refused.reason}[/red]")
        return 2
    except administration.NotFound:
        console.print(f"[red]unit {unit} is not registered: run add-unit first[/red]")
        return 2
    finally:
        await engine.dispose()
    console.print(f"contact {contact_id} registered for {role} in unit {unit}")
    return 0


async def demo(settings: Settings, employees: int) -> int:
    """A synthetic workforce's year of absences through the running API (`make up`)."""
    import httpx

    from api.dev_tokens import ensure_dev_tokens
    from core.secrets import load_secrets
    from core.temporal import connect
    from ingestion.demo import DemoFailed, run_demo
    from models.deadlines import STOCKHOLM

    if settings.auth.mode != "embedded":
        console.print(
            "[red]the demo posts with the dev tokens of `make up` (auth.mode embedded)[/red]"
        )
        return 2
    _, tokens, _ = ensure_dev_tokens(settings)
    base_url = f"http://{settings.api.host}:{settings.api.port}"
    engine = create_engine(settings)
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=300) as api:
            try:
                await api.get("/readyz")
            except httpx.TransportError:
                console.print(f"[red]no API at {base_url}: start the engine with `make up`[/red]")
                return 2
            summary = await run_demo(
                api,
                create_sessionmaker(engine),
                tokens["hr_system"],
                employees,
                datetime.now(STOCKHOLM).date(),
                console,
                temporal=await connect(settings, load_secrets(settings)),
            )
    except DemoFailed as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    finally:
        await engine.dispose()
    console.print(
        f"see them: GET {base_url}/api/v1/cases with the coordinator token, or the Temporal UI "
        f"at http://127.0.0.1:{settings.temporal.ui_port} with the query "
        'RehabStage="identified"'
    )
    return 0 if summary.cases else 1


async def add_team(
    settings: Settings,
    fields: dict[str, object],
    name: str,
    units: list[str],
    contacts: list[tuple[str, str]],
) -> int:
    """Register a joint-meeting team, its units and contacts, then start its cadence.

    Idempotent: running it again changes nothing and leaves the running workflow alone.
    The team's FK officer and coordinators are registered as those roles' contacts of
    every unit of the team, which is where the case invitations look them up.
    """
    from pydantic import ValidationError

    from core.secrets import load_secrets
    from core.temporal import connect
    from models.meetings import TeamConfig

    try:
        config = TeamConfig.model_validate(fields)
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"]) or "team"
            console.print(f"[red]{field}: {error['msg']}[/red]")
        return 2
    registration = administration.TeamRegistration(
        config,
        name,
        tuple(units),
        tuple(contacts),  # type: ignore[arg-type]
    )
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            written = await administration.register_team(session, registration)
    except administration.Refused as refused:
        console.print(f"[red]{refused.field}: {refused.reason}[/red]")
        return 2
    except administration.Conflict as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    finally:
        await engine.dispose()
    client = await connect(settings, load_secrets(settings))
    await administration.start_team(client, settings.temporal.task_queue, config)
    console.print(
        f"team {config.code} {written.value.replace('_', ' ')}; its cadence runs as "
        f"workflow meeting-team-{config.code}"
    )
    return 0


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError("use a date: YYYY-MM-DD") from None


def _session(value: str) -> tuple[datetime, datetime]:
    from models.deadlines import STOCKHOLM

    try:
        start_text, end_text = value.split("/")
        start = datetime.fromisoformat(start_text).replace(tzinfo=STOCKHOLM)
        end = datetime.combine(start.date(), time.fromisoformat(end_text), tzinfo=STOCKHOLM)
    except ValueError:
        raise argparse.ArgumentTypeError("use YYYY-MM-DDTHH:MM/HH:MM") from None
    if end <= start:
        raise argparse.ArgumentTypeError("a session must end after it starts")
    return start, end


_PROGRAMME_COMMANDS = frozenset(
    {"add-manager", "schedule-course", "record-attendance", "record-apt", "programme-status"}
)


async def _programme(settings: Settings, args: argparse.Namespace) -> int:
    from commands import programme

    match args.command:
        case "add-manager":
            return await programme.add_manager(
                settings, console, args.unit, args.address, args.appointed
            )
        case "schedule-course":
            return await programme.schedule_course(
                settings, console, args.year, args.title, args.session
            )
        case "record-attendance":
            return await programme.record_attendance(
                settings, console, args.session_id, args.manager_id, not args.absent
            )
        case "record-apt":
            return await programme.record_apt(
                settings, console, args.unit, args.held_on, args.theme, args.participants
            )
        case _:
            return await programme.programme_status(settings, console)


def gen_keys(settings: Settings, rotate: bool) -> int:
    """Print the three key settings, fresh; with `rotate`, the current rings get a new key."""
    from core.keys import generate
    from models.deadlines import STOCKHOLM

    sec = settings.security
    if rotate and not (sec.payload_keys and sec.pin_encryption_keys and sec.pin_lookup_key):
        console.print(
            "[red]--rotate extends the rings in REHABFLOW_SECURITY__*: set all three first[/red]"
        )
        return 2
    values = generate(
        datetime.now(STOCKHOLM).date(),
        payload_ring=sec.payload_keys.get_secret_value() if rotate and sec.payload_keys else None,
        pin_ring=(
            sec.pin_encryption_keys.get_secret_value()
            if rotate and sec.pin_encryption_keys
            else None
        ),
        lookup_key=(
            sec.pin_lookup_key.get_secret_value() if rotate and sec.pin_lookup_key else None
        ),
    )
    # Plain stdout, no markup: the output is meant for a secret store or an env file.
    for name, value in values.items():
        print(f"{name}={value}")
    return 0


NEW_LOOKUP_KEY_ENV = "REHABFLOW_NEW_PIN_LOOKUP_KEY"


async def rekey_records_command(settings: Settings) -> int:
    """Re-encrypt identity numbers and contacts under the active key; rehash on a new lookup key."""
    import base64
    import os

    from core.codec import KeyRing
    from core.identity import IdentityProtector
    from core.secrets import load_secrets
    from store.contacts import ContactProtector
    from store.rekey import rekey_records

    secrets = load_secrets(settings)
    ring = KeyRing.from_config(secrets.pin_encryption_keys)
    new_key = os.environ.get(NEW_LOOKUP_KEY_ENV)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            summary = await rekey_records(
                session,
                IdentityProtector(ring, secrets.pin_lookup_key),
                ContactProtector(ring),
                new_lookup=(
                    IdentityProtector(ring, base64.urlsafe_b64decode(new_key)) if new_key else None
                ),
            )
    finally:
        await engine.dispose()
    console.print(
        f"re-encrypted {summary.identities} identity numbers and {summary.contacts} contacts "
        f"under key {ring.active_key_id}"
        + ("; lookup index rehashed with the new lookup key" if new_key else "")
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="starter.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    unit = commands.add_parser("add-unit", help="register an organisational unit")
    unit.add_argument("code", help="unit code, e.g. SKV-HEMTJ-1 (letters, digits, . _ -)")
    unit.add_argument("--name", required=True, help="the unit's name")
    unit.add_argument(
        "--policy",
        choices=administration.POLICY_IDS,
        default="se-default",
        help="the policy new cases of the unit take a snapshot of",
    )
    change = commands.add_parser(
        "change-unit", help="rename a unit, set its policy for new cases, or deactivate it"
    )
    change.add_argument("code", help="a registered unit code")
    change.add_argument("--name", help="the unit's new name")
    change.add_argument("--policy", choices=administration.POLICY_IDS)
    change.add_argument("--deactivate", action="store_true", help="open no new cases")
    change.add_argument("--activate", action="store_true")
    absences = commands.add_parser(
        "import-absences", help="import a payroll export of absences (CSV), resumably"
    )
    absences.add_argument("file", type=Path, help="CSV with columns " + ", ".join(COLUMNS))
    contact = commands.add_parser(
        "add-contact", help="register who in a unit receives notifications for a role"
    )
    contact.add_argument("unit", help="a registered unit code")
    contact.add_argument("role", choices=UNIT_CONTACT_ROLES)
    contact.add_argument("address", help="e-mail address, or https:// URL with --channel webhook")
    contact.add_argument("--channel", choices=["email", "webhook"], default="email")
    contact.add_argument(
        "--language", choices=["sv", "en"], default="sv", help="language of the notifications"
    )
    demo_cmd = commands.add_parser(
        "demo", help="post a synthetic workforce's year of absences to the running API"
    )
    demo_cmd.add_argument("--employees", type=int, default=500, help="workforce size")
    team = commands.add_parser(
        "add-team",
        help="register a joint-meeting team (units, biweekly cadence) and start its cadence",
    )
    team.add_argument("code", help="team code, e.g. SKV-JM-1 (letters, digits, . _ -)")
    team.add_argument("--name", required=True, help="the team's name")
    team.add_argument(
        "--unit", action="append", required=True, help="a registered unit (repeat for more)"
    )
    team.add_argument("--weekday", required=True, choices=list(WEEKDAYS))
    team.add_argument("--time", required=True, help="local start time, Europe/Stockholm: HH:MM")
    team.add_argument("--anchor", required=True, help="a date in a meeting week: YYYY-MM-DD")
    team.add_argument("--capacity", type=int, default=4, help="cases per slot (default 4)")
    team.add_argument("--minutes", type=int, default=45, help="minutes per case (default 45)")
    team.add_argument(
        "--lead-hours", type=int, default=72, help="booking closes this long before a slot"
    )
    team.add_argument("--fk-officer", help="the team's FK officer's e-mail address")
    team.add_argument(
        "--coordinator", action="append", default=[], help="a coordinator's e-mail (repeatable)"
    )
    report = commands.add_parser(
        "report",
        help="evaluation report (CSV, charts, one HTML page) of the cases opened in a period",
    )
    report.add_argument("--from", dest="first", required=True, type=_date, help="YYYY-MM-DD")
    report.add_argument("--to", dest="last", required=True, type=_date, help="YYYY-MM-DD")
    report.add_argument("--out", required=True, type=Path, help="folder to write the report to")
    report.add_argument(
        "--change-on", type=_date, help="compare cases opened before and from this date"
    )
    report.add_argument(
        "--synthetic",
        type=int,
        metavar="EMPLOYEES",
        help="instead of the record store: made-up casework of a synthetic workforce this size",
    )
    manager = commands.add_parser(
        "add-manager", help="register a manager of a unit for the yearly course"
    )
    manager.add_argument("unit", help="a registered unit code")
    manager.add_argument("address", help="the manager's work e-mail")
    manager.add_argument("--appointed", type=_date, required=True, help="in post since YYYY-MM-DD")
    course = commands.add_parser(
        "schedule-course",
        help="schedule the year's course in insurance medicine; invites every manager (.ics)",
    )
    course.add_argument("--year", type=int, required=True)
    course.add_argument("--title", required=True)
    course.add_argument(
        "--session",
        action="append",
        required=True,
        type=_session,
        help="local start and end, Europe/Stockholm: 2027-02-03T09:00/12:00 (repeatable)",
    )
    attendance = commands.add_parser(
        "record-attendance", help="record that a manager attended a course session"
    )
    attendance.add_argument("session_id", type=uuid.UUID)
    attendance.add_argument("manager_id", type=uuid.UUID)
    attendance.add_argument("--absent", action="store_true", help="record non-attendance")
    apt = commands.add_parser("record-apt", help="record an APT dialogue of a unit")
    apt.add_argument("unit", help="a registered unit code")
    apt.add_argument("--held-on", type=_date, required=True)
    apt.add_argument("--theme", action="append", required=True, help="a theme code (repeatable)")
    apt.add_argument("--participants", type=int, required=True)
    commands.add_parser(
        "programme-status", help="course and APT coverage per unit, and when each manager is due"
    )
    keys = commands.add_parser(
        "gen-keys", help="print new key rings (payload, identity numbers, lookup key)"
    )
    keys.add_argument(
        "--rotate",
        action="store_true",
        help="put a new active key in front of the rings in the environment (old ones decrypt)",
    )
    commands.add_parser(
        "rekey-records",
        help="re-encrypt identity numbers and contacts under the active key; with "
        f"{NEW_LOOKUP_KEY_ENV} set, rehash the lookup index with that key",
    )
    args = parser.parse_args(argv)

    settings = Settings()
    if args.command == "gen-keys":
        return gen_keys(settings, args.rotate)
    if args.command == "rekey-records":
        return asyncio.run(rekey_records_command(settings))
    if args.command == "add-unit":
        from pydantic import TypeAdapter, ValidationError

        from models.api import UnitCode  # validated exactly as the API validates it

        try:
            code = TypeAdapter(UnitCode).validate_python(args.code)
        except ValidationError:
            console.print("[red]unit code: use 1 to 32 letters, digits, '.', '_' or '-'[/red]")
            return 2
        created = asyncio.run(add_unit(settings, code, args.name, args.policy))
        console.print(f"unit {code} {'registered' if created else 'already registered'}")
    elif args.command == "import-absences":
        if not args.file.is_file():
            console.print(f"[red]no such file: {args.file}[/red]")
            return 2
        return asyncio.run(import_absences(settings, args.file))
    elif args.command == "add-contact":
        return asyncio.run(
            add_contact(settings, args.unit, args.role, args.channel, args.address, args.language)
        )
    elif args.command == "change-unit":
        active = True if args.activate else False if args.deactivate else None
        return asyncio.run(change_unit(settings, args.code, args.name, args.policy, active))
    elif args.command == "demo":
        if not 1 <= args.employees <= 100_000:
            console.print("[red]--employees: between 1 and 100000[/red]")
            return 2
        return asyncio.run(demo(settings, args.employees))
    elif args.command == "add-team":
        contacts = [("coordinator", address) for address in args.coordinator]
        if args.fk_officer:
            contacts.append(("fk_officer", args.fk_officer))
        fields = {
            "code": args.code,
            "weekday": WEEKDAYS.index(args.weekday) + 1,
            "starts_at": args.time,
            "anchor_on": args.anchor,
            "capacity": args.capacity,
            "meeting_minutes": args.minutes,
            "lead_hours": args.lead_hours,
        }
        return asyncio.run(add_team(settings, fields, args.name, args.unit, contacts))
    elif args.command in _PROGRAMME_COMMANDS:
        return asyncio.run(_programme(settings, args))
    elif args.command == "report":
        from commands.report import report_command, synthetic_report

        if args.synthetic is not None:
            if not 40 <= args.synthetic <= 20_000:
                console.print("[red]--synthetic: between 40 and 20000 employees[/red]")
                return 2
            return synthetic_report(
                console, args.first, args.last, args.out, args.change_on, args.synthetic
            )
        return asyncio.run(
            report_command(settings, console, args.first, args.last, args.out, args.change_on)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
