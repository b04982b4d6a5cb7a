"""Everything the app holds while it runs; built by create_app, opened and closed by the lifespan."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from fundtrail_schemas.rulepack import RulePack

from .adapters.importer import ImportPool
from .adapters.oidc import OidcKeySource
from .adapters.publisher import KafkaPublisher
from .adapters.ratelimit import SharedRateLimiter
from .adapters.trails import TrailStore
from .core.pagecache import PageCache
from .core.ratelimit import RateLimiter
from .core.recent import ExpiringMap
from .core.tokens import Verifier
from .settings import GatewaySettings


@dataclass
class Runtime:
    settings: GatewaySettings
    codec: Verifier  # local key, identity provider, or both (see adapters.keys.server_verifier)
    publisher: KafkaPublisher
    limiter: RateLimiter
    recent_ids: ExpiringMap[uuid.UUID, bool]
    pending_cases: ExpiringMap[uuid.UUID, str]
    page_cache: PageCache
    imports: ImportPool
    shared_limiter: SharedRateLimiter
    packs: list[RulePack] = field(default_factory=list)
    key_source: OidcKeySource | None = None  # the identity provider's JWKS, in OIDC mode
    engine: AsyncEngine | None = None
    sessions: async_sessionmaker[AsyncSession] | None = None
    trails: TrailStore | None = None
    ready: bool | None = None  # what /ready answered last (its log shows changes only)
    sse_connections: int = 0

    @staticmethod
    def clock() -> float:
        """Monotonic seconds (rate limits, expiring maps)."""
        return time.monotonic()
