"""The command line that starts things: units, and later cases, imports and demos."""

from __future__ import annotations

import argparse
import asyncio
import sys

from rich.console import Console
from sqlalchemy.dialects.postgresql import insert

from core.settings import Settings
from store.db import create_engine, create_sessionmaker
from store.schema import Unit

console = Console()


async def add_unit(settings: Settings, code: str, name: str) -> bool:
    """Register a unit; returns False when it already existed (nothing is changed then)."""
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine).begin() as session:
            result = await session.execute(
                insert(Unit)
                .values(code=code, name=name)
                .on_conflict_do_nothing()
                .returning(Unit.code)
            )
            return result.scalar_one_or_none() is not None
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="starter.py", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    unit = commands.add_parser("add-unit", help="register an organisational unit")
    unit.add_argument("code", help="unit code, e.g. SKV-HEMTJ-1 (letters, digits, . _ -)")
    unit.add_argument("--name", required=True, help="the unit's name")
    args = parser.parse_args(argv)

    settings = Settings()
    if args.command == "add-unit":
        from pydantic import TypeAdapter, ValidationError

        from models.api import UnitCode  # validated exactly as the API validates it

        try:
            code = TypeAdapter(UnitCode).validate_python(args.code)
        except ValidationError:
            console.print("[red]unit code: use 1 to 32 letters, digits, '.', '_' or '-'[/red]")
            return 2
        created = asyncio.run(add_unit(settings, code, args.name))
        console.print(f"unit {code} {'registered' if created else 'already registered'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
