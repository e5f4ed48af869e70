"""The web UI of `safeset serve`: plain HTML, CSS and JavaScript modules shipped in `ui/` (no build
step, nothing fetched from elsewhere), served at `/` (the app, behind the token), `/login` (the token
prompt) and `/ui/` (the code, which holds no data). Every page forbids scripts from anywhere but the
server (Content-Security-Policy), and the scripts render data only as text."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

UI = Path(__file__).parent / "ui"
POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(UI / name, media_type="text/html", headers={"Content-Security-Policy": POLICY})


@router.get("/")
async def app_page() -> FileResponse:
    return _page("index.html")


@router.get("/login")
async def login_page() -> FileResponse:
    return _page("login.html")


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/ui", StaticFiles(directory=UI), name="ui")
