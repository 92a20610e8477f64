"""How many owner streams a user holds at once, on every worker together.

An owner stream (the console following a whole project) costs the server what an agent's does,
so a user may hold at most ``max_per_user`` at once. Each stream takes a lease its worker renews;
the lease is taken first and counted after, so racing opens can only refuse too many, never let
too many in, and a worker that dies frees its users' places once its leases run out.
"""

from __future__ import annotations

from ..background import Periodic
from ..store.streams import OwnerStreamLeases
from .presence import TooManyStreams


class OwnerStreams:
    """Leases of this process's owner streams.

    Args:
        leases: Where every worker's leases are.
        lease_s: How long a lease lives without renewal (renewed every third of it).
        max_per_user: The most owner streams a user may hold at once (0: no limit).
    """

    def __init__(self, leases: OwnerStreamLeases, lease_s: float, max_per_user: int) -> None:
        self._leases = leases
        self._lease_s = lease_s
        self.max_per_user = max_per_user
        self._held: set[str] = set()
        self._upkeep = Periodic("owner-stream-leases", self._renew, lease_s / 3)

    async def connect(self, user_id: str) -> str:
        """Take a place for a new stream of ``user_id``; return its lease id.

        Raises:
            TooManyStreams: the user holds ``max_per_user`` streams already.
        """
        lease_id = await self._leases.hold(user_id, self._lease_s)
        if self.max_per_user and await self._leases.live(user_id) > self.max_per_user:
            await self._leases.release(lease_id)
            raise TooManyStreams(user_id)
        self._held.add(lease_id)
        return lease_id

    async def disconnect(self, lease_id: str) -> None:
        """Give a stream's place back."""
        self._held.discard(lease_id)
        await self._leases.release(lease_id)

    async def _renew(self) -> None:
        await self._leases.renew(sorted(self._held), self._lease_s)

    def start(self) -> None:
        """Start renewing this process's leases."""
        self._upkeep.start()

    async def stop(self) -> None:
        """Stop renewing (the leases run out unless their streams closed first)."""
        await self._upkeep.stop()
