"""Connecting to Temporal with rehabflow's data converter (pydantic, encrypted payloads)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.converter import DataConverter

from core.codec import KeyRing, build_data_converter
from core.secrets import Secrets
from core.settings import Settings


def data_converter(secrets: Secrets) -> DataConverter:
    """The one converter that client, worker, tests and replayer must share."""
    return build_data_converter(KeyRing.from_config(secrets.payload_keys))


async def connect(settings: Settings, secrets: Secrets, *, lazy: bool = False) -> Client:
    """A client for the configured namespace; `lazy` defers the connection to first use."""
    return await Client.connect(
        settings.temporal.target,
        namespace=settings.temporal.namespace,
        data_converter=data_converter(secrets),
        lazy=lazy,
    )
