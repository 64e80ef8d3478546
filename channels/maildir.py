"""The embedded default channel: each e-mail becomes an .eml file in a local maildir."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from pathlib import Path

from channels.delivery import DeliveryError
from channels.mail import compose_email
from channels.message import OutboundMessage

logger = logging.getLogger(__name__)


class MaildirChannel:
    """Writes to `root/tmp`, then links into `root/new`, as the maildir convention asks.

    The file name is the digest of the idempotency key, and `os.link` refuses to replace
    an existing file, so a re-delivery (even a concurrent one) writes nothing twice.
    Files and folders are private to the owner: they hold recipients' addresses.
    """

    def __init__(self, root: Path, from_address: str = "rehabflow@localhost") -> None:
        self.root = root
        self._from_address = from_address

    def path_for(self, message: OutboundMessage) -> Path:
        return self.root / "new" / f"{message.delivery_id}.eml"

    async def deliver(self, message: OutboundMessage) -> None:
        content = compose_email(message, self._from_address).as_bytes()
        try:
            written = await asyncio.to_thread(self._write_once, message.delivery_id, content)
        except OSError as error:
            # A full or read-only disk may recover; the dispatcher's backoff covers it.
            raise DeliveryError(
                retryable=True, reason=f"maildir write failed: {type(error).__name__}"
            ) from None
        outcome = "written to" if written else "already in"
        logger.info(
            "notification %s (%s) %s maildir %s",
            message.idempotency_key,
            message.notification_type,
            outcome,
            self.root,
        )

    def _write_once(self, name: str, content: bytes) -> bool:
        for folder in ("tmp", "new", "cur"):
            (self.root / folder).mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.root / "new" / f"{name}.eml"
        # A mail reader moves read mail to cur/ and appends ":2,<flags>" to the name.
        if any((self.root / "cur").glob(f"{name}.eml*")):
            return False
        staging = self.root / "tmp" / f"{name}.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(staging, target)
            except FileExistsError:
                return False
            _fsync_dir(target.parent)
            return True
        finally:
            staging.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    # The link is durable only once its directory entry is; the outbox trusts that.
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
