"""The openai backend's `http_client: aiohttp`: chat completions posted with one aiohttp session.

The SDK's request machinery (its options, URL and header merging, an httpx request handed to an
aiohttp adapter) costs several times the CPU of the post itself, and was most of a run's CPU per
call. This posts the same JSON body with the headers the SDK's client would send (authorization,
organization, project, user agent) and raises the SDK's own exceptions, so that retries, pushback
and outages are classified as on the httpx transport: an error status is the SDK's status error for
it (built by the SDK's client, with the response's headers for Retry-After), a timeout is
`APITimeoutError`, and a refused, reset or dropped connection is `APIConnectionError`.
"""

from __future__ import annotations

import importlib
import json
from typing import Any

import aiohttp
import openai
from openai import AsyncOpenAI


class AiohttpPoster:
    def __init__(self, client: AsyncOpenAI, timeout_s: float):
        self.client = client
        self.url = str(client.base_url).rstrip("/") + "/chat/completions"
        headers = {**client.default_headers, **client.auth_headers}
        self.headers = {k: v for k, v in headers.items() if isinstance(v, str)}  # not the SDK's Omit()
        self.timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        # the HTTP library of this SDK version (httpx or httpx2), for the requests and responses its
        # exceptions carry
        self._http: Any = importlib.import_module(type(client.base_url).__module__.partition(".")[0])
        self._session: aiohttp.ClientSession | None = None  # opened on the running loop, at first use

    async def post(self, body: dict[str, Any]) -> Any:
        """The decoded JSON answer; the SDK's exceptions for anything else (a ValueError when a 200's
        body is not JSON)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0), timeout=self.timeout
            )
        try:
            async with self._session.post(
                self.url, data=json.dumps(body).encode(), headers=self.headers
            ) as response:
                content = await response.read()
                status, headers = response.status, response.headers
        except TimeoutError:  # aiohttp's connect and read timeouts are TimeoutErrors too
            raise openai.APITimeoutError(request=self._request()) from None
        except aiohttp.ClientError as exc:
            raise openai.APIConnectionError(request=self._request()) from exc
        if status >= 300:
            response = self._http.Response(
                status, headers=list(headers.items()), content=content, request=self._request()
            )
            raise self.client._make_status_error_from_response(response)
        return json.loads(content)

    def _request(self) -> Any:
        return self._http.Request("POST", self.url)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
