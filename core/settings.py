"""Process settings: one typed object built from REHABFLOW_* environment variables."""

from __future__ import annotations

from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class TemporalTlsSettings(BaseModel):
    """TLS to the Temporal frontend: files mounted from Secrets, never inline values."""

    # None: on when any file below or an API key is given (Temporal Cloud needs TLS).
    enabled: bool | None = None
    # PEM CA bundle that signed the frontend's certificate; None trusts the system roots.
    ca_file: Path | None = None
    # The name the frontend's certificate must carry, when it differs from the address's host.
    server_name: str | None = None
    # mTLS: the client certificate chain and its private key (PEM), given together.
    client_cert_file: Path | None = None
    client_key_file: Path | None = None

    @model_validator(mode="after")
    def _cert_and_key_together(self) -> TemporalTlsSettings:
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("temporal.tls.client_cert_file and client_key_file go together")
        return self


class TemporalSettings(BaseModel):
    # None means "the embedded dev server that `make up` starts on this machine".
    address: str | None = None
    namespace: str = "default"
    task_queue: str = "rehabflow"
    # Ports of the embedded dev server and its UI (127.0.0.1 only).
    port: int = 7233
    ui_port: int = 8233
    tls: TemporalTlsSettings = Field(default_factory=TemporalTlsSettings)
    # Temporal Cloud API key (sent as a bearer token; implies TLS).
    api_key: SecretStr | None = None

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
    # Per-caller token bucket (per API process: N processes allow N times the rate).
    rate_limit_per_minute: int = Field(default=300, ge=1)
    rate_limit_burst: int = Field(default=60, ge=1)
    # Browser origins allowed to call the codec server; empty means the embedded
    # Temporal UI (http://127.0.0.1:<ui_port> and http://localhost:<ui_port>).
    codec_cors_origins: list[str] = Field(default_factory=list)
    # How long an action waits for the case's workflow to answer before the API gives up
    # with 504; the action may still complete, and a retry says so.
    update_timeout_s: float = Field(default=30.0, gt=0)


# Asymmetric signatures only: "none" and shared-secret HMAC algorithms are never accepted.
_ALLOWED_JWT_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"})


class AuthSettings(BaseModel):
    """Bearer JWTs: from the organisation's OIDC provider, or embedded dev tokens."""

    # "embedded": tokens signed by a key generated under the data directory (`make up`).
    # "oidc": tokens from the issuer, verified against its JWKS.
    mode: Literal["embedded", "oidc"] = "embedded"
    issuer: str = "rehabflow-embedded"
    audience: str = "rehabflow-api"
    jwks_url: str | None = None
    algorithms: list[str] = Field(default_factory=lambda: ["RS256"])
    # Claim names, so they can match what the identity provider puts in its tokens.
    role_claim: str = "rehabflow_role"
    units_claim: str = "rehabflow_units"
    employee_claim: str = "rehabflow_employee"
    leeway_s: int = Field(default=30, ge=0, le=300)
    # The pages' sign-in (authorization code with PKCE) in "oidc" mode: the client
    # registered at the provider; its discovery document defaults to the issuer's.
    client_id: str | None = None
    client_secret: SecretStr | None = None
    discovery_url: str | None = None
    scopes: str = "openid"

    @property
    def openid_configuration_url(self) -> str:
        return self.discovery_url or (self.issuer.rstrip("/") + "/.well-known/openid-configuration")

    @field_validator("algorithms")
    @classmethod
    def _only_asymmetric(cls, value: list[str]) -> list[str]:
        rejected = [a for a in value if a not in _ALLOWED_JWT_ALGORITHMS]
        if rejected or not value:
            raise ValueError(
                f"algorithms must be a non-empty subset of {sorted(_ALLOWED_JWT_ALGORITHMS)}"
            )
        return value

    @model_validator(mode="after")
    def _oidc_needs_jwks(self) -> AuthSettings:
        if self.mode == "oidc" and not self.jwks_url:
            raise ValueError("auth.jwks_url is required when auth.mode is 'oidc'")
        return self


class NotificationSettings(BaseModel):
    """How notifications leave rehabflow; the outbox and its dispatcher use these."""

    # Origin of the links in every message (no path: the link is built from the case id).
    app_url: str = "http://127.0.0.1:8000"
    # Where e-mail-channel contacts are delivered: "maildir" (files under the data
    # directory, the embedded default) or "smtp". Webhook contacts always use the webhook.
    email_channel: Literal["maildir", "smtp"] = "maildir"
    # None means "<data_dir>/maildir".
    maildir_path: Path | None = None
    from_address: str = "rehabflow@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_start_tls: bool = True
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    # HMAC key of the webhook signature header; required when a webhook contact exists.
    webhook_secret: SecretStr | None = None
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # Overdue and escalation notices wait for one daily digest per recipient, sent at this
    # local time (Europe/Stockholm); None sends them at once (several at once still as one).
    digest_time: time | None = time(7, 0)
    # After this many failed attempts a notification is dead-lettered.
    max_attempts: int = Field(default=8, ge=1)
    # Exponential backoff: first retry after `backoff_initial_s`, doubling up to the max.
    backoff_initial_s: float = Field(default=30.0, gt=0)
    backoff_max_s: float = Field(default=3600.0, gt=0)
    # How often the dispatcher looks for due notifications, and how many per round.
    poll_interval_s: float = Field(default=5.0, gt=0)
    batch_size: int = Field(default=50, ge=1, le=1000)


class LogSettings(BaseModel):
    # "auto" picks a readable console format on a terminal and JSON otherwise.
    format: Literal["auto", "console", "json"] = "auto"
    level: str = "INFO"


class SecuritySettings(BaseModel):
    # Payload key ring: "keyid:base64url-key,..."; the first key encrypts, all decrypt.
    payload_keys: SecretStr | None = None
    # Compact payloads: compressed before encryption, with one-letter metadata names.
    # Versions before 2026-12 cannot read them: when upgrading from one, roll out with this
    # off, then turn it on.
    compact_payloads: bool = True
    # Key ring for personal identity numbers in the record store (same format), and the
    # HMAC key (base64url, 32 bytes) of their lookup hash.
    pin_encryption_keys: SecretStr | None = None
    pin_lookup_key: SecretStr | None = None


class TelemetrySettings(BaseModel):
    """Tracing and metrics (core.observability)."""

    # OTLP over HTTP, e.g. http://otel-collector:4318; None keeps every span in the process.
    otlp_endpoint: str | None = None
    # None: "rehabflow-api" or "rehabflow-worker".
    service_name: str | None = None
    # Prometheus `/metrics` on its own port; None serves none.
    metrics_port: int | None = Field(default=None, ge=0, lt=65536)
    metrics_host: str = "127.0.0.1"
    # How often the API reads the business gauges from PostgreSQL.
    business_metrics_interval_s: float = Field(default=30.0, gt=0)


class ScreeningSettings(BaseModel):
    # A directory of instrument definitions (*.json, models.instruments.load_instrument), e.g.
    # licensed official wording; read once when the API starts.
    instruments_dir: Path | None = None


class ProgrammeSettings(BaseModel):
    """The organisation whose manager courses and APT dialogues this deployment keeps."""

    organisation: str = Field(default="default", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


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
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    screening: ScreeningSettings = Field(default_factory=ScreeningSettings)
    programme: ProgrammeSettings = Field(default_factory=ProgrammeSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)

    @property
    def maildir_path(self) -> Path:
        return self.notifications.maildir_path or self.data_dir.resolve() / "maildir"

    @property
    def embedded_pgdata(self) -> Path:
        return self.data_dir.resolve() / "postgres"

    def database_url(self) -> str:
        """The SQLAlchemy URL of the record store, external or embedded."""
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        # The embedded server listens only on a unix socket inside its data directory.
        return f"postgresql+asyncpg://postgres@/{self.database.name}?host={self.embedded_pgdata}"
