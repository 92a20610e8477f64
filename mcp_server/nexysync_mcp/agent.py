"""The agent this MCP server speaks for: its client, where its keys came from, and its inbox."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nexysync import APIError, AsyncClient, KeyFileError
from nexysync.crypto import KeyRing, decode_key
from nexysync.devices import adopt_box, key_file_device
from nexysync.keyfile import KEY_DIR, KEY_FILE, KeyFile, find_key_file, load_key_file
from nexysync.search import KINDS, SearchIndex
from nexysync_mcp.errors import KEY_MISMATCH, NO_KEY, ToolFailure, describe
from nexysync_mcp.inbox import Entry, Inbox

if TYPE_CHECKING:
    from nexysync_generated.models import Me

__all__ = ["AgentLink", "credentials_from_arguments", "load_credentials"]

logger = logging.getLogger(__name__)

ENV_NAMES = ("NEXYSYNC_API_URL", "NEXYSYNC_API_KEY", "NEXYSYNC_ENC_KEY")
#: Inbox messages ns_auth tries an enc_key on: it is refused when none of them decrypts.
KEY_CHECK_MESSAGES = 10


def load_credentials(key_file: Path | None = None) -> KeyFile | None:
    """Load the agent's credentials from ``key_file``, or ``.nexysync/key`` upward, or the env vars.

    Returns:
        The credentials, or None when there is no key file and no ``NEXYSYNC_*`` env var at all.

    Raises:
        KeyFileError: a key file or env var exists but is not usable.
    """
    path = key_file or find_key_file()
    if path is None and not any(os.environ.get(name) for name in ENV_NAMES):
        return None
    return load_key_file(path)


def credentials_from_arguments(api_key: str, enc_key: str, api_url: str | None, fallback_url: str | None) -> KeyFile:
    """Build credentials from what ``ns_auth`` was given.

    Raises:
        ToolFailure: a key that is not standard base64 of 32 bytes, or no API URL anywhere.
    """
    try:
        key = decode_key(enc_key)
    except ValueError as exc:
        raise ToolFailure(f"enc_key: {exc}.") from exc
    url = api_url or fallback_url or os.environ.get("NEXYSYNC_API_URL")
    if not url:
        raise ToolFailure("api_url is required: no API URL is configured yet.")
    return KeyFile(api_key=api_key.strip(), api_url=url, keys=(key,))


class AgentLink:
    """The configured client and inbox, replaceable at run time by ``ns_auth``.

    Args:
        announce: Told of each new message the inbox caches.
        on_event: Told of other agents' new references, new files and store updates.
        stream_options: Settings for the inbox's ``client.stream()``.
    """

    def __init__(
        self,
        announce: Callable[[Entry], Awaitable[None]],
        *,
        on_event: Callable[[str, dict[str, Any]], Awaitable[None]] | None = None,
        **stream_options: Any,
    ) -> None:
        self._announce = announce
        self._on_event = on_event
        self._stream_options = stream_options
        self.client: AsyncClient | None = None
        self.inbox: Inbox | None = None
        self.credentials: KeyFile | None = None
        #: Where the credentials came from, for ``whoami``: a key file's path, "environment" or "ns_auth".
        self.source: str | None = None
        #: Why no client is configured, as told to the AI.
        self.problem = NO_KEY
        #: The local search index, once a search opened it; new messages go in as they arrive.
        self.search: SearchIndex | None = None
        #: What the index must catch up with before it answers (it starts empty: everything).
        self.stale: set[str] = set(KINDS)

    def start_from_files(self, key_file: Path | None) -> None:
        """Configure from the key file or env vars if there are any; otherwise wait for ``ns_auth``."""
        try:
            credentials = load_credentials(key_file)
        except KeyFileError as error:
            self.problem = describe(error)
            logger.warning("%s", self.problem)
            return
        if credentials is None:
            logger.info("no NexySync key found; waiting for ns_auth")
            return
        self._use(credentials, source=str(credentials.path) if credentials.path else "environment")

    @staticmethod
    def _client_for(credentials: KeyFile) -> AsyncClient:
        """Build the client for ``credentials``, bound to their project when it is known."""
        return AsyncClient(
            base_url=credentials.api_url,
            api_key=credentials.api_key,
            key_ring=credentials.key_ring(),
            project_id=credentials.project_id,
        )

    def _use(
        self, credentials: KeyFile, *, source: str, client: AsyncClient | None = None, slug: str | None = None
    ) -> None:
        """Make ``credentials`` current, with ``client`` when one was already built for them.

        Args:
            credentials: The credentials to use.
            source: Where they came from.
            client: A client built for exactly these credentials; a new one when None.
            slug: The agent's slug when known, so the inbox need not ask ``GET /v1/me``.
        """
        self.credentials = credentials
        self.source = source
        self.client = client if client is not None else self._client_for(credentials)
        self.stale = set(KINDS)
        self.inbox = Inbox(
            self.client,
            self._arrived,
            on_event=self._on_event,
            slug=slug,
            on_device_keys=self._take_sealed_ring,
            on_change=self._changed,
            **self._stream_options,
        )
        self.inbox.start()

    async def _arrived(self, entry: Entry) -> None:
        """Index a new message (when the index is open), then announce it."""
        if self.search is not None and entry.message is not None:
            self.search.add_messages([entry.message])
        await self._announce(entry)

    def _changed(self, kind: str) -> None:
        """Note what the index must refresh before its next answer."""
        refreshed = {"new_ref": "ref", "kv_update": "kv", "reset": "message"}.get(kind)
        if refreshed is not None:
            self.stale.add(refreshed)

    def search_index(self) -> SearchIndex:
        """Open the search index (once): beside the key file, else in ``./.nexysync/``."""
        if self.search is None:
            path = self.credentials.path if self.credentials is not None else None
            self.search = SearchIndex.beside(path if path is not None else Path.cwd() / KEY_DIR / KEY_FILE)
        return self.search

    async def _take_sealed_ring(self, device_ids: list[str] | None) -> None:
        """Take the key ring a rotation sealed to this machine's device, if the key file has one.

        The ring goes into the key file (so the next start has it) and into the running client.
        ``device_ids``: the devices an event named (None: look anyway, the stream just opened).
        """
        credentials, client = self.credentials, self.client
        path = credentials.path if credentials else None
        if credentials is None or client is None or path is None:
            return
        device = key_file_device(path)
        if device is None or (device_ids is not None and device.id not in device_ids):
            return
        async with AsyncClient(base_url=credentials.api_url, api_key=device.token) as reader:
            box = await reader.devices.keys()
        ring = adopt_box(path, box.sealed)
        if ring is not None and self.client is client:
            client.key_ring = KeyRing(ring)
            self.credentials = credentials.replace(keys=tuple(ring))
            logger.info(
                "took the key ring sealed to this machine: %d key(s), now encrypting with %s", len(ring), box.key_id
            )

    def require(self) -> AsyncClient:
        """Return the client.

        Raises:
            ToolFailure: none is configured (the message says how to configure one).
        """
        if self.client is None:
            raise ToolFailure(self.problem)
        return self.client

    async def authenticate(self, credentials: KeyFile) -> Me:
        """Check the credentials against the API, then use them instead of the current ones.

        Raises:
            ToolFailure: the API refused them or cannot be reached; the current client stays.
        """
        # A client takes its project id only when built, and only GET /v1/me tells it: a first
        # client asks once, and the client built with the answer checks the key and is kept, so
        # neither it nor its inbox asks again.
        me = await self._identify(credentials)
        checked = credentials.replace(project_id=me.project_id)
        client = self._client_for(checked)
        try:
            await self._check_key(client, checked.api_url)
            await self.close()
            self._use(checked, source="ns_auth", client=client, slug=me.agent.slug)
        except BaseException:
            if self.client is not client:
                await client.aclose()
            raise
        return me

    @staticmethod
    async def _identify(credentials: KeyFile) -> Me:
        """Return who the credentials' API key belongs to.

        Raises:
            ToolFailure: the API refused the key or cannot be reached.
        """
        # The ring is given, although GET /v1/me is plaintext, so the client does not read NEXYSYNC_ENC_KEY.
        client = AsyncClient(base_url=credentials.api_url, api_key=credentials.api_key, key_ring=credentials.key_ring())
        try:
            return await client.me.get()
        except APIError as error:
            raise ToolFailure(describe(error, api_url=credentials.api_url)) from error
        finally:
            await client.aclose()

    @staticmethod
    async def _check_key(client: AsyncClient, api_url: str) -> None:
        """Refuse the client's enc_key when the agent has messages and it decrypts none of them.

        Raises:
            ToolFailure: the key decrypts none of the messages, or the API failed.
        """
        # The API cannot judge enc_key; the inbox's messages can, when there are some. A page
        # skips those it cannot decrypt (``undecryptable``): the key is wrong when none of
        # them decrypts, not when one other agent was given another key.
        try:
            page = await client.messages.list(limit=KEY_CHECK_MESSAGES).first_page()
        except APIError as error:
            raise ToolFailure(describe(error, api_url=api_url)) from error
        if page.undecryptable and not page.data:
            raise ToolFailure(KEY_MISMATCH.format(what="this agent's messages with that enc_key"))

    async def close(self) -> None:
        """Stop the inbox and close the client."""
        inbox, client, search = self.inbox, self.client, self.search
        self.inbox, self.client, self.search = None, None, None
        if search is not None:
            search.close()
        if inbox is not None:
            await inbox.close()
        if client is not None:
            await client.aclose()
