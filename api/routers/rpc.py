"""POST /rpc: the embedded chain as a standard Ethereum JSON-RPC node (no key: what it
serves is the public chain; every write is a transaction signed by its sender)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.deps import Services
from api.models import MAX_RPC_BODY, RPC_REQUEST, RpcAnswer, RpcReply

router = APIRouter()


@router.post("/rpc", response_model=RpcAnswer, openapi_extra=RPC_REQUEST,
             responses={
                 200: {"description": "JSON-RPC 2.0 response(s), one per request of a batch; errors "
                                      "(parse error -32700, invalid request -32600, unknown method -32601, "
                                      "invalid params -32602, reverted or failed -32000/3) are answered here "
                                      "too, as JSON-RPC errors"},
                 413: {"model": RpcReply, "description": f"The body is over {MAX_RPC_BODY} bytes: a JSON-RPC "
                                                         "error -32600, id null"}})
async def rpc(request: Request, services: Services) -> JSONResponse:
    body = await request.body()  # within MAX_RPC_BODY (api.limits)
    try:
        payload: Any = json.loads(body)
    except ValueError:
        return _error(-32700, "parse error: the body is not JSON", 200)
    dispatcher = services.node.dispatcher
    assert dispatcher is not None  # the route exists only on a node with the embedded chain
    # The dispatcher holds the chain lock and does CPU work: keep it off the event loop.
    result = await run_in_threadpool(dispatcher.handle, payload)
    return JSONResponse(result)


def _error(code: int, message: str, status: int) -> JSONResponse:
    return JSONResponse({"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}},
                        status_code=status)
