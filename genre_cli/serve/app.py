"""The web service of ``genre serve``: routes, limits, the inference pool.

Routes
------
``GET /``
    The page (``static/index.html``; its script and style under ``/static/``).
``GET /healthz``
    ``{"status": "ok", ...}`` with the pool's load; answered by the event loop, never queued
    behind inference.
``GET /api/models``
    The served models with their cards, the default, and the limits.
``POST /api/predict``
    ``multipart/form-data`` with ``file`` (the audio) and optionally ``model`` (an id from
    ``/api/models``) and ``top_k`` (also accepted as query parameters). Answers the record of
    ``genre predict --format jsonl --timeline`` (:func:`genre_cli.predict.record`, ``path``
    being the client's file name) plus ``model``, ``output``, ``truncated``,
    ``analysed_seconds``, ``file_seconds``, ``max_seconds`` (and ``note`` when truncated).

Errors are JSON, ``{"error": code, "message": text, "status": n}``: 400 malformed request,
404 unknown model or route, 405, 408 upload too slow, 413 upload too large (refused before
the body is read when ``Content-Length`` says so; counted as it streams otherwise), 415 not
multipart, 422 not decodable audio (with the decoder's reason), 503 too many requests in
progress (``Retry-After``), 500 anything unexpected.

Each upload goes to its own folder inside a private temporary folder (mode 0700), under a
fixed name, and is deleted when the request ends, however it ends. Classification runs in
a pool of ``workers`` threads (an anyio capacity limiter); at most ``workers + queue``
requests are admitted at once, the rest get 503 at once rather than piling up.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from genre_cli import predict as pred
from genre_cli.catalog import Resolved, resolve
from genre_cli.errors import AudioError, GenreError, UsageError
from genre_cli.inference import check_device
from genre_cli.serve import upload
from genre_cli.serve.config import ServeConfig

STATIC = Path(__file__).resolve().parent / "static"

#: Headers on every answer: nothing from elsewhere may load, nothing may frame the page.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "permissions-policy": "microphone=(self), camera=(), geolocation=()",
}


class ApiError(Exception):
    """An answer other than 200: ``status``, a short ``code`` and a message for people."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, "status": status}, status_code=status, headers=headers)


@dataclass
class Served:
    """A model the service offers, under ``id``."""

    id: str
    resolved: Resolved

    @property
    def classifier(self):
        return self.resolved.classifier


def model_ids(models: Sequence[Resolved]) -> list[str]:
    """Unique ids from the cards' names (``model``, ``model-2``, ... for equal names)."""
    ids: list[str] = []
    for r in models:
        base, n = r.card.name, 1
        name = base
        while name in ids:
            n += 1
            name = f"{base}-{n}"
        ids.append(name)
    return ids


def load(specs: Sequence[str], *, device: str = "auto") -> list[Served]:
    """Resolve and check each model (built-in name or file; :func:`genre_cli.catalog.resolve`).

    Raises
    ------
    GenreError
        A model that cannot be found, loaded, or run on a window of silence; a device that
        cannot be used (CUDA without a GPU is refused whatever the model's kind).
    """
    check_device(device)
    resolved = [resolve(s, device=device) for s in specs]
    for r in resolved:
        pred.check_model(r.classifier)
    return [Served(i, r) for i, r in zip(model_ids(resolved), resolved)]


class Service:
    """The state behind the routes: models, limits, the pool, the private upload folder."""

    def __init__(self, models: Sequence[Served], config: ServeConfig, *, tmp_root: Path | None = None):
        if not models:
            raise UsageError("no model to serve")
        self.models = {m.id: m for m in models}
        self.default = models[0].id
        self.config = config
        self.tmp_root = Path(tempfile.mkdtemp(prefix="genre-serve-", dir=tmp_root))  # mode 0700
        self.limiter: anyio.CapacityLimiter | None = None
        self.in_flight = 0  # admitted requests (event loop only)
        self.running = 0  # classifications in progress (worker threads)
        self.served = self.failed = self.refused = 0
        self._lock = threading.Lock()
        self.started = time.time()

    # ----------------------------------------------------------------------- helpers

    def model(self, name: str | None) -> Served:
        if not name:
            return self.models[self.default]
        if name not in self.models:
            raise ApiError(404, "unknown_model", f"unknown model {name!r}; served: {', '.join(self.models)}")
        return self.models[name]

    def limits(self) -> dict[str, Any]:
        from genre_cli.audio import readable_formats

        c = self.config
        names, extensions = readable_formats()
        return {
            "formats": list(names),
            "extensions": list(extensions),
            "max_upload_bytes": c.max_upload_bytes,
            "max_upload_mb": c.max_upload_mb,
            "max_seconds": c.max_seconds,
            "top_k": c.top_k,
            "workers": c.workers,
            "queue": c.queue,
        }

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp_root, ignore_errors=True)

    # ----------------------------------------------------------------------- routes

    async def healthz(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "status": "ok",
                "models": list(self.models),
                "workers": self.config.workers,
                "running": self.running,
                "in_flight": self.in_flight,
                "capacity": self.config.capacity,
                "served": self.served,
                "failed": self.failed,
                "refused": self.refused,
                "uptime_seconds": round(time.time() - self.started, 1),
            },
            headers={"cache-control": "no-store"},
        )

    async def list_models(self, request: Request) -> JSONResponse:
        models = [{"id": m.id, "default": m.id == self.default, "card": m.resolved.card.to_dict()} for m in self.models.values()]
        return JSONResponse({"default": self.default, "models": models, "limits": self.limits()})

    async def index(self, request: Request) -> Response:
        return Response((STATIC / "index.html").read_bytes(), media_type="text/html; charset=utf-8", headers={"cache-control": "no-cache"})

    async def predict(self, request: Request) -> Response:
        cfg = self.config
        if self.in_flight >= cfg.capacity:
            self.refused += 1
            busy = f"the server is busy ({self.in_flight} requests in progress); retry in a few seconds"
            raise ApiError(503, "busy", busy, headers={"retry-after": "5"})
        upload.check_length(request.headers, cfg.max_upload_bytes)
        ctype = request.headers.get("content-type")
        upload.boundary_of(ctype)
        query_model = request.query_params.get("model")
        if query_model:
            self.model(query_model)  # 404 before the body is read
        self.in_flight += 1
        folder = Path(tempfile.mkdtemp(dir=self.tmp_root))
        try:
            try:
                with anyio.fail_after(cfg.upload_timeout):
                    up = await upload.receive(request.stream(), ctype, folder, limit=cfg.max_upload_bytes)
            except TimeoutError:
                raise ApiError(408, "upload_timeout", f"the upload took longer than {cfg.upload_timeout:g} s") from None
            except ClientDisconnect:
                return Response(status_code=400)  # nobody is listening
            served = self.model(up.fields.get("model") or query_model)
            top_k = parse_top_k(up.fields.get("top_k") or request.query_params.get("top_k"), cfg.top_k, len(served.classifier.labels))
            if self.limiter is None:  # one per event loop (made here: anyio needs the running loop)
                self.limiter = anyio.CapacityLimiter(cfg.workers)
            rec = await anyio.to_thread.run_sync(self.classify, served, up, top_k, folder, limiter=self.limiter)
            self.served += 1
            return JSONResponse(rec)
        except anyio.get_cancelled_exc_class():  # stopping (Ctrl-C) and the grace period is over: say so, in JSON
            self.failed += 1
            return error_response(503, "stopping", "the server is stopping; retry when it is back")
        except Exception:
            self.failed += 1
            raise
        finally:
            self.in_flight -= 1
            shutil.rmtree(folder, ignore_errors=True)

    # ----------------------------------------------------------------------- work (pool threads)

    def classify(self, served: Served, up: upload.Upload, top_k: int, folder: Path) -> dict[str, Any]:
        """Classify the saved upload (runs in a worker thread)."""
        cfg = self.config
        with self._lock:
            self.running += 1
        try:
            try:
                (res,) = pred.run(served.classifier, [up.path], jobs=1, timeline=True, max_seconds=cfg.max_seconds)
            except GenreError as exc:
                raise ApiError(500, "model_error", f"model {served.id!r} failed: {self.scrub(exc.message, up, folder)}") from None
            if isinstance(res, pred.Failure):
                raise ApiError(422, "not_audio", self.scrub(res.reason, up, folder))
            rec = pred.record(res, top_k=top_k, timeline=True, path=up.filename)
            file_seconds = round(res.duration, 3)
            if res.truncated:
                try:
                    from genre_cli.audio import probe

                    file_seconds = round(probe(up.path).duration, 3) or None
                except AudioError:
                    file_seconds = None
        finally:
            with self._lock:
                self.running -= 1
        rec.update(
            model=served.id,
            output=served.classifier.output,
            truncated=res.truncated,
            analysed_seconds=round(res.duration, 3),
            file_seconds=file_seconds,
            max_seconds=cfg.max_seconds,
        )
        if res.truncated:
            length = f"{file_seconds:.0f} s long" if file_seconds else "longer than that"
            rec["note"] = f"only the first {cfg.max_seconds:g} s were analysed (the file is {length}; the server's --max-seconds)"
        return rec

    @staticmethod
    def scrub(reason: str, up: upload.Upload, folder: Path) -> str:
        """A decoder's message with the server's paths replaced by the client's file name."""
        for p in (str(up.path), str(folder)):
            reason = reason.replace(p, up.filename)
        return reason


def parse_top_k(raw: str | None, default: int, n_labels: int) -> int:
    """``top_k`` from a form field (default when absent; at most the number of labels)."""
    if raw is None or raw == "":
        return min(default, n_labels)
    try:
        k = int(raw)
    except ValueError:
        raise ApiError(400, "bad_request", f"top_k must be an integer >= 1, got {raw[:20]!r}") from None
    if k < 1:
        raise ApiError(400, "bad_request", f"top_k must be an integer >= 1, got {k}")
    return min(k, n_labels)


class SecurityHeaders:
    """ASGI middleware adding :data:`SECURITY_HEADERS` to every answer."""

    def __init__(self, app):
        self.app = app
        self.extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(service: Service) -> Starlette:
    """The ASGI application of ``service`` (its lifespan removes the upload folder at shutdown)."""
    import contextlib

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            service.cleanup()

    async def api_error(request, exc):
        return error_response(exc.status, exc.code, exc.message, getattr(exc, "headers", None))

    async def http_error(request, exc):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    async def server_error(request, exc):
        return error_response(500, "internal_error", f"unexpected {type(exc).__name__}; see the server's log")

    app = Starlette(
        routes=[
            Route("/", service.index),
            Route("/healthz", service.healthz),
            Route("/api/models", service.list_models),
            Route("/api/predict", service.predict, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={
            ApiError: api_error,
            upload.UploadError: api_error,
            HTTPException: http_error,
            Exception: server_error,
        },
        lifespan=lifespan,
    )
    app.add_middleware(SecurityHeaders)
    app.state.service = service
    return app


# ----------------------------------------------------------------------------- running


def is_loopback(host: str) -> bool:
    """True for loopback addresses and ``localhost``; False for anything reachable from elsewhere."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> tuple[socket.socket, str]:
    """A listening socket on ``host:port`` (port 0: any free one) and the page's URL.

    Raises
    ------
    UsageError
        The address cannot be used (in use, not local, unknown host).
    """
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if family == socket.AF_INET6 else bound[0]
    return sock, f"http://{shown}:{bound[1]}/"


def uvicorn_server(app, config: ServeConfig, *, log_level: str = "info"):
    """The uvicorn server for ``app``: short keep-alive, a generous cap on open connections, and
    a bounded wait for requests in flight when stopped.

    The requests themselves are bounded by the service (``--workers`` + ``--queue``, beyond:
    503 in JSON). uvicorn's own cap counts open connections, idle ones included (it does not time
    out a connection that never sends a request), and beyond it answers every request, ``/healthz``
    included, with a plain-text 503: so it is set far above what the pool admits,
    :data:`MAX_CONNECTIONS`, as a guard against running out of file descriptors, not as the
    load limit. On Ctrl-C or SIGTERM, requests in flight get :data:`SHUTDOWN_SECONDS` to finish
    (a stalled upload would otherwise hold the server up to ``--upload-timeout``).
    """
    import uvicorn

    return uvicorn.Server(
        uvicorn.Config(
            app,
            log_level=log_level,
            timeout_keep_alive=5,
            limit_concurrency=connection_cap(config),
            timeout_graceful_shutdown=SHUTDOWN_SECONDS,
            server_header=False,
        )
    )


#: uvicorn's cap on open connections (see :func:`uvicorn_server`), at most.
MAX_CONNECTIONS = 1024
#: File descriptors left for everything but client connections (uploads, models, logs, threads).
FD_HEADROOM = 128


def connection_cap(config: ServeConfig) -> int:
    """:data:`MAX_CONNECTIONS`, lowered below the process's open-file limit (``ulimit -n``, often
    1024) by :data:`FD_HEADROOM`, so that uvicorn answers its own 503 before ``accept()`` runs
    out of descriptors; never below what the pool admits (``4 * capacity + 16``)."""
    cap = MAX_CONNECTIONS
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY:
            cap = min(cap, soft - FD_HEADROOM)
    except (ImportError, OSError, ValueError):  # pragma: no cover - no resource module (Windows)
        pass
    return max(cap, 4 * config.capacity + 16)


#: Seconds requests in flight get to finish when the server is stopped.
SHUTDOWN_SECONDS = 5


def run(service: Service, sock: socket.socket, *, log_level: str = "info") -> None:
    """Serve until interrupted (Ctrl-C); the upload folder is removed on the way out."""
    from genre_cli.parallel import available_cores

    try:
        import torch

        torch.set_num_threads(max(1, available_cores() // service.config.workers))  # the workers share the cores
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    try:
        uvicorn_server(create_app(service), service.config, log_level=log_level).run(sockets=[sock])
    finally:
        service.cleanup()
        sock.close()
