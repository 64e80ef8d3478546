"""Process settings: one typed object built from REHABFLOW_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TemporalSettings(BaseModel):
    # None means "the embedded dev server that `make up` starts on this machine".
    address: str | None = None
    namespace: str = "default"
    task_queue: str = "rehabflow"
    # Ports of the embedded dev server and its UI (127.0.0.1 only).
    port: int = 7233
    ui_port: int = 8233

    @property
    def target(self) -> str:
        return self.address or f"127.0.0.1:{self.port}"

    @property
    def is_embedded(self) -> bool:
        return self.address is None


class DatabaseSettings(BaseModel):
    # None means "the embedded PostgreSQL under the data directory".
    url: SecretStr | None = None
    name: str = "rehabflow"
    pool_size: int = 5
    application_name: str = "rehabflow"

    @property
    def is_embedded(self) -> bool:
        return self.url is None


class ApiSettings(BaseModel):
    host: str = "127.0.0.1"
    port: int = 8000
    # Requests above this size are refused before they are parsed.
    max_body_bytes: int = 1_048_576


class LogSettings(BaseModel):
    # "auto" picks a readable console format on a terminal and JSON otherwise.
    format: Literal["auto", "console", "json"] = "auto"
    level: str = "INFO"


class SecuritySettings(BaseModel):
    # Payload key ring: "keyid:base64url-key,..."; the first key encrypts, all decrypt.
    payload_keys: SecretStr | None = None
    # Key ring for personal identity numbers in the record store (same format), and the
    # HMAC key (base64url, 32 bytes) of their lookup hash.
    pin_encryption_keys: SecretStr | None = None
    pin_lookup_key: SecretStr | None = None


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REHABFLOW_",
        env_nested_delimiter="__",
        extra="ignore",
    )

    data_dir: Path = Path(".data")
    temporal: TemporalSettings = Field(default_factory=TemporalSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir.resolve() / "postgres"

    def database_url(self) -> str:
        """The SQLAlchemy URL of the record store, external or embedded."""
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        # The embedded server listens only on a unix socket inside its data directory.
        return f"postgresql+asyncpg://postgres@/{self.database.name}?host={self.embedded_pgdata}"
