"""The echo API written as a typical FastAPI application: a reference point for benchmarks.

It has echod's contract for the requests the benchmarks send, written the way FastAPI's
own tutorial writes each part, not tuned:

- the demo users are checked by an ``HTTPBasic`` dependency (a plain ``def``, as in the
  tutorial, so FastAPI runs it on its thread pool);
- the body is a pydantic model that allows any field; a body that is not a JSON object
  is answered 400 instead of FastAPI's 422;
- an ``@app.middleware("http")`` function keeps or makes the request id, sets
  ``X-Request-ID`` and ``X-Response-Time``, and writes one JSON log line per request
  that is not a probe, on stdout;
- prometheus-fastapi-instrumentator counts and times the requests and serves /metrics.

It runs on uvicorn, which picks uvloop and httptools when they are installed. From this
folder::

    uvicorn --host 127.0.0.1 --port 3000 --no-access-log app:app

Its packages are pinned in ``requirements.txt`` beside it; they are not echod's.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import time
import uuid
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from prometheus_fastapi_instrumentator import Instrumentator
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

#: The demo users and their passwords, which are public.
USERS = {
    "remarkablebob": "2rFtex",
    "dextroussheep": "vSKjGK",
    "luckyslug": "VRsBMW",
    "pettyrabbit": "2BpgwH",
}
#: Paths that are neither logged nor counted.
PROBES = ("/health", "/metrics")

logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")
log = logging.getLogger("echod")
app = FastAPI(title="echod (FastAPI reference)")
security = HTTPBasic()
Instrumentator(should_group_status_codes=False, excluded_handlers=list(PROBES)).instrument(
    app
).expose(app, include_in_schema=False)


class EchoRequest(BaseModel):
    """Any JSON object: the fields are not known in advance."""

    model_config = ConfigDict(extra="allow")


def current_user(credentials: Annotated[HTTPBasicCredentials, Depends(security)]) -> str:
    """The name of the user whose password the request carries, or 401."""
    password = USERS.get(credentials.username)
    if password is None or not secrets.compare_digest(
        credentials.password.encode(), password.encode()
    ):
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED,
            detail="Incorrect username or password",
            headers={"WWW-Authenticate": "Basic"},
        )
    return credentials.username


@app.middleware("http")
async def request_log(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Set the request id and the response time; log and time every non-probe request."""
    started = time.perf_counter()
    request_id = request.headers.get("x-request-id") or str(uuid.uuid4())
    response = await call_next(request)
    elapsed_ms = (time.perf_counter() - started) * 1000
    response.headers["X-Request-ID"] = request_id
    if request.url.path not in PROBES:
        response.headers["X-Response-Time"] = f"{elapsed_ms:.2f}ms"
        line = {
            "level": "info",
            "message": f"{request.method} {request.url.path}",
            "status": response.status_code,
            "duration_ms": round(elapsed_ms, 3),
            "requestId": request_id,
        }
        log.info(json.dumps(line))
    return response


@app.exception_handler(RequestValidationError)
async def bad_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Answer a body that is not a JSON object with 400, as echod does."""
    del request
    return JSONResponse(
        status_code=status.HTTP_400_BAD_REQUEST,
        content={
            "detail": "the body must be a JSON object",
            "errors": jsonable_encoder(exc.errors()),
        },
    )


@app.get("/health")
async def health() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@app.post("/api/echo")
@app.put("/api/echo")
async def echo(body: EchoRequest, user: Annotated[str, Depends(current_user)]) -> dict[str, Any]:
    """The object with ``"echoed": true``; 400 if it has been echoed already."""
    del user
    echoed = body.model_dump()
    if echoed.get("echoed") is True or echoed.get("echoed") == "true":
        raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST, detail="already echoed")
    echoed["echoed"] = True
    return echoed
