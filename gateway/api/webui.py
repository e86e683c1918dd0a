"""The browser client: serves the built bundle (web/dist) and, in dev mode only, the demo login.

The bundle is built by `make web` and committed, so serving it needs no Node. Outside dev mode
the page takes its token from the host application (`?token=` or postMessage) and this module
mints nothing: the dev routes answer 404 as if they did not exist.
"""

from pathlib import Path
from typing import Final

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel

from gateway.auth import mint_token
from schemas.settings import Settings

DEMO_FIRM: Final = "demo-firm"
DEV_TOKEN_TTL_S: Final = 12 * 3600  # a working day of demoing without re-login

# The page loads only its own scripts; styles may be inline because ProseMirror decorations
# (remote carets) set style attributes. No frame-ancestors: host apps embed the page.
_CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'"
)


class DemoUser(BaseModel):
    id: str
    name: str
    role: str
    title: str


class DemoDirectory(BaseModel):
    firm_id: str
    users: list[DemoUser]


class TokenRequest(BaseModel):
    user_id: str


class TokenResponse(BaseModel):
    token: str
    user: DemoUser
    firm_id: str


DEMO_USERS: Final = (
    DemoUser(id="avery", name="Avery Attorney", role="editor", title="Attorney"),
    DemoUser(id="parker", name="Parker Paralegal", role="editor", title="Paralegal"),
    DemoUser(id="casey", name="Casey Commenter", role="commenter", title="Reviewing partner"),
    DemoUser(id="vera", name="Vera Viewer", role="viewer", title="Client liaison"),
    DemoUser(id="audrey", name="Audrey Auditor", role="auditor", title="Compliance"),
)


def bundle_dir() -> Path:
    """The repository's web/dist (an editable install: this file is gateway/api/webui.py in
    it), else web/dist under the working directory: `pip install .` copies only the packages
    into site-packages, and the Docker image runs from /app, which holds /app/web/dist."""
    in_repository = Path(__file__).resolve().parents[2] / "web" / "dist"
    if (in_repository / "index.html").is_file():
        return in_repository
    return Path.cwd() / "web" / "dist"


def webui_router(settings: Settings) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    dist = bundle_dir()
    _add_page(router, dist)
    if settings.dev:
        _add_dev_login(router, settings)
    else:
        _add_dev_refusal(router)
    return router


def _add_page(router: APIRouter, dist: Path) -> None:
    index = dist / "index.html"

    @router.get("/")
    async def page() -> Response:
        if not index.is_file():
            message = "The web bundle (web/dist) is missing: run `make web` (Node 20.19+, npm)."
            return Response(message, status_code=503, media_type="text/plain")
        headers = {"Cache-Control": "no-cache", "Content-Security-Policy": _CSP}
        return FileResponse(index, headers=headers)

    assets = (dist / "assets").resolve()

    # A route rather than a StaticFiles mount: mounts inside an included APIRouter are dropped
    # by some FastAPI versions. Vite writes a flat assets/ folder, so one path segment suffices.
    @router.get("/assets/{name}")
    async def asset(name: str) -> FileResponse:
        path = (assets / name).resolve()
        if path.parent != assets or not path.is_file():
            raise HTTPException(404, "no such asset")
        # Asset names carry a content hash, so a URL's content never changes.
        return FileResponse(path, headers={"Cache-Control": "public, max-age=31536000, immutable"})


def _add_dev_login(router: APIRouter, settings: Settings) -> None:
    by_id = {user.id: user for user in DEMO_USERS}

    @router.get("/dev/users")
    async def demo_users() -> DemoDirectory:
        return DemoDirectory(firm_id=DEMO_FIRM, users=list(DEMO_USERS))

    @router.post("/dev/token")
    async def demo_token(request: TokenRequest) -> TokenResponse:
        user = by_id.get(request.user_id)
        if user is None:
            raise HTTPException(404, f"no demo user {request.user_id!r}")
        if "HS256" not in settings.jwt_algorithms:
            raise HTTPException(409, "dev login mints HS256 tokens, which settings do not accept")
        token = mint_token(settings, user.id, DEMO_FIRM, user.role, user.name, DEV_TOKEN_TTL_S)
        return TokenResponse(token=token, user=user, firm_id=DEMO_FIRM)


def _add_dev_refusal(router: APIRouter) -> None:
    # Explicit 404s (not just absent routes) so a catch-all added later cannot turn them into 200s.
    @router.api_route("/dev/users", methods=["GET"])
    @router.api_route("/dev/token", methods=["POST"])
    async def no_dev_login() -> Response:
        raise HTTPException(404, "dev login is available only in dev mode")
