"""The migrations build exactly the schema the code declares, as one linear history."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from store.migrate import alembic_config
from store.schema import Base


def test_migrations_form_one_line_so_alembic_upgrade_head_works() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1


async def test_migrated_database_matches_the_models(template_url: str) -> None:
    engine = create_async_engine(template_url)
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
    finally:
        await engine.dispose()
    assert diff == []
