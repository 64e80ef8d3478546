"""E-mail delivery over SMTP with aiosmtplib, mapping SMTP failures to DeliveryError."""

from __future__ import annotations

import logging
import re

import aiosmtplib
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from channels.delivery import DeliveryError
from channels.mail import compose_email
from channels.message import OutboundMessage

logger = logging.getLogger(__name__)

_ENHANCED_STATUS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")


class SmtpSettings(BaseModel):
    """Connection settings; nest it in the application's pydantic-settings model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(default=587, gt=0, lt=65536)
    start_tls: bool = True
    username: str | None = None
    password: SecretStr | None = None
    from_address: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    timeout_s: float = Field(default=30.0, gt=0)
    # EHLO name; without it aiosmtplib asks the resolver for our FQDN, which can stall.
    local_hostname: str | None = None


def _refusal(code: int, message: str, stage: str) -> DeliveryError:
    # Keep only the codes: a server's reply text often echoes the recipient's address.
    status = _ENHANCED_STATUS.search(message)
    reason = f"smtp {stage} {code}" + (f" {status.group()}" if status else "")
    return DeliveryError(retryable=code < 500, reason=reason)


class SmtpChannel:
    """Sends each message as one e-mail over a fresh SMTP connection.

    Errors are re-raised `from None`: aiosmtplib's exceptions quote the recipient's
    address, and a chained traceback would carry it into logs and workflow history.
    """

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    async def deliver(self, message: OutboundMessage) -> None:
        settings = self._settings
        email = compose_email(message, settings.from_address)
        try:
            await aiosmtplib.send(
                email,
                sender=settings.from_address,
                recipients=[message.recipient.address],
                hostname=settings.host,
                port=settings.port,
                start_tls=settings.start_tls,
                username=settings.username,
                password=settings.password.get_secret_value() if settings.password else None,
                timeout=settings.timeout_s,
                local_hostname=settings.local_hostname,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            refused = error.recipients[0]
            raise _refusal(refused.code, refused.message, "recipient refused") from None
        except aiosmtplib.SMTPAuthenticationError as error:
            # Bad credentials are an operator problem, not this message's: retry until fixed.
            raise DeliveryError(retryable=True, reason=f"smtp auth {error.code}") from None
        except aiosmtplib.SMTPSenderRefused as error:
            raise _refusal(error.code, error.message, "sender refused") from None
        except aiosmtplib.SMTPResponseException as error:
            raise _refusal(error.code, error.message, "rejected") from None
        except aiosmtplib.SMTPTimeoutError:
            raise DeliveryError(retryable=True, reason="smtp timeout") from None
        except (aiosmtplib.SMTPException, OSError) as error:
            # Connection refused or dropped, STARTTLS unsupported: the relay may recover.
            reason = f"smtp unavailable: {type(error).__name__}"
            raise DeliveryError(retryable=True, reason=reason) from None
        logger.info(
            "notification %s (%s) delivered by smtp",
            message.idempotency_key,
            message.notification_type,
        )
