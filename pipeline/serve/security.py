"""The guard in front of every route: the bearer token, then the body size.

The token comes from the server's environment (SAFESET_TOKEN) and is compared in constant time; only
GET /v1/health answers without it (a container health check, which learns nothing but "ok"), with the
web UI's token prompt (/login) and its code (/ui/, no data). The web UI keeps the token in a
SameSite=Strict cookie, which GET requests may carry instead of the header (a page load, an event
stream); a request that changes anything needs the header. A page load without the token is sent to
the prompt; the API answers 401. A body larger than the limit is refused with 413 before any route
reads it, whether or not the client said its length. Both answer in the API's JSON error shape.
"""

from __future__ import annotations

import hmac
import json
from typing import Any
from urllib.parse import unquote

OPEN_PATHS = ("/v1/health", "/login")
OPEN_PREFIX = "/ui/"
COOKIE = "safeset_token"
_READS = ("GET", "HEAD")
_WITH_BODY = ("POST", "PUT", "PATCH")


async def send_error(send: Any, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                        *headers],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: Any, token: str | None, max_body: int):
        self.app = app
        self.token = f"Bearer {token}".encode() if token else None
        self.secret = token.encode() if token else None
        self.max_body = max_body

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        path = scope["path"]
        guarded = self.token is not None and path not in OPEN_PATHS and not path.startswith(OPEN_PREFIX)
        if guarded and not self._allowed(headers, scope["method"]):
            if scope["method"] in _READS and not path.startswith("/v1/"):
                return await _redirect(send, "/login")
            return await send_error(
                send, 401, "missing or wrong bearer token (Authorization: Bearer $SAFESET_TOKEN)",
                [(b"www-authenticate", b"Bearer")],
            )  # fmt: skip
        if scope["method"] in _WITH_BODY:
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                return await send_error(send, 413, f"the body is larger than {self.max_body:,} bytes")
            body, more = b"", True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return None
                body += message.get("body", b"")
                more = message.get("more_body", False)
                if len(body) > self.max_body:
                    return await send_error(send, 413, f"the body is larger than {self.max_body:,} bytes")
            receive = _replay(body, receive)
        return await self.app(scope, receive, send)

    def _allowed(self, headers: dict[bytes, bytes], method: str) -> bool:
        if hmac.compare_digest(headers.get(b"authorization", b""), self.token):
            return True
        if method not in _READS:
            return False
        for cookie in headers.get(b"cookie", b"").decode("latin-1").split(";"):
            name, _, value = cookie.strip().partition("=")
            if name == COOKIE and hmac.compare_digest(unquote(value).encode(), self.secret):
                return True
        return False


async def _redirect(send: Any, location: str) -> None:
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")]})  # fmt: skip
    await send({"type": "http.response.body", "body": b""})


def _replay(body: bytes, receive: Any) -> Any:
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
