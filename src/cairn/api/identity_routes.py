"""``GET /local-identity``: the server proves it was started from the CAIRN_HOME
whose local owner keys a CLI is about to send (``cairn.services.local_identity``). No key
is needed, and the answer reveals nothing: an HMAC of the caller's own nonce."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from cairn.api.problems import problem_responses
from cairn.errors import NotFound
from cairn.services.app import App
from cairn.services.local_identity import prove, read_identity

router = APIRouter(tags=["meta"])


class IdentityProof(BaseModel):
    """HMAC-SHA256 of the nonce under the server's identity secret."""

    proof: str


@router.get(
    "/local-identity",
    summary="Prove which CAIRN_HOME this server runs from (for the local CLI)",
    response_model=IdentityProof,
    responses=problem_responses(),
)
def local_identity(
    request: Request, nonce: Annotated[str, Query(min_length=16, max_length=128)]
) -> IdentityProof:
    """Answer a CLI's challenge; 404 when this server keeps no local keys."""
    cairn: App = request.app.state.cairn
    secret = read_identity(cairn.settings.home)
    if secret is None:
        raise NotFound("this server keeps no local owner keys")
    return IdentityProof(proof=prove(secret, nonce))
