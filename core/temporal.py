"""Connecting to Temporal with rehabflow's data converter (pydantic, encrypted payloads)."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import Client, Interceptor
from temporalio.converter import DataConverter
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from core.codec import KeyRing, build_data_converter
from core.secrets import Secrets
from core.settings import Settings, TemporalSettings


def data_converter(secrets: Secrets) -> DataConverter:
    """The one converter that client, worker, tests and replayer must share."""
    return build_data_converter(KeyRing.from_config(secrets.payload_keys))


def tls_config(temporal: TemporalSettings) -> TLSConfig | bool:
    """The TLS part of the connection: False (plain), or a TLSConfig read from the files."""
    tls = temporal.tls
    files = (tls.ca_file, tls.client_cert_file, tls.client_key_file)
    enabled = tls.enabled
    if enabled is None:
        enabled = (
            any(f is not None for f in files)
            or tls.server_name is not None
            or (temporal.api_key is not None)
        )
    if not enabled:
        return False
    return TLSConfig(
        server_root_ca_cert=tls.ca_file.read_bytes() if tls.ca_file else None,
        domain=tls.server_name,
        client_cert=tls.client_cert_file.read_bytes() if tls.client_cert_file else None,
        client_private_key=tls.client_key_file.read_bytes() if tls.client_key_file else None,
    )


async def connect(
    settings: Settings,
    secrets: Secrets,
    *,
    lazy: bool = False,
    interceptors: Sequence[Interceptor] = (),
    runtime: Runtime | None = None,
) -> Client:
    """A client for the configured namespace; `lazy` defers the connection to first use.

    Worker, API and command line all connect here, so TLS, mTLS and the API key apply to each.
    """
    temporal = settings.temporal
    return await Client.connect(
        temporal.target,
        namespace=temporal.namespace,
        data_converter=data_converter(secrets),
        tls=tls_config(temporal),
        api_key=temporal.api_key.get_secret_value() if temporal.api_key else None,
        interceptors=interceptors,
        runtime=runtime,
        lazy=lazy,
    )
