"""A gateway's side of the ingest API: what the simulator uses to report."""

from __future__ import annotations

import httpx

from active_sessions.ingest import snapshot_body
from active_sessions.sources.types import Snapshot

API_PREFIX = "/api/v1"


class GatewayClient:
    """Reports snapshots for several gateways, each with its own token."""

    def __init__(self, base_url: str, tokens: dict[str, str], *, timeout: float = 10.0):
        self.tokens = tokens
        self.http = httpx.Client(base_url=base_url.rstrip("/"), timeout=timeout)

    def healthy(self) -> bool:
        try:
            return self.http.get(f"{API_PREFIX}/health").status_code == 200
        except httpx.HTTPError:
            return False

    def post_snapshot(self, snapshot: Snapshot) -> dict:
        token = self.tokens.get(snapshot.gateway)
        if token is None:
            raise KeyError(f"no token for gateway {snapshot.gateway!r}")
        response = self.http.post(
            f"{API_PREFIX}/snapshots",
            json=snapshot_body(snapshot),
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code >= 400:
            raise RuntimeError(f"{snapshot.gateway}: {response.status_code} {response.text[:500]}")
        return response.json()

    def close(self) -> None:
        self.http.close()
