"""The web app of `radgenome serve`: a SQL console and named-query forms, case pages with a CT viewer.

Starlette serves three pages (``static/``: the console, a case, a 404) and a JSON API over one
read-only `Warehouse`::

    GET  /open?case_id=ID                   redirects to /case/KEY, the case page (a 404 page for no such case)
    GET  /api/info                          snapshot, tables and their row counts, whether the viewer is built
    GET  /api/schema                        tables and columns with the schema's descriptions
    GET  /api/queries                       the named queries with their typed parameters
    GET  /api/regions?q=TEXT                anatomy regions whose names or synonyms contain TEXT
    GET  /api/terms?q=TEXT                  finding terms whose name or synonyms contain TEXT
    POST /api/sql      {sql, params, page, page_size}       one page of a result
    POST /api/query/NAME {params, page, page_size}          one page of a named query's result
    GET  /api/download?sql=..|query=..&params=JSON&format=csv|parquet   a whole result as a file
    POST /api/export   {sql|query, params, name, format, images, masks, crop, margin_mm, dry_run}
    GET  /api/case/KEY                      the case page's data (`warehouse.web.cases`)
    GET  /api/case/KEY/image.nii.gz         its CT; /mask/REGION_ID.nii.gz a region's mask crop;
    GET  /api/case/KEY/slice/VIEW/INDEX.png?window=lung   one slice

Errors come back as ``{"error": one line}``: the CLI's wording (the `explain` the CLI passes in),
400 for a request the warehouse refuses, 404 for a case, region or page it does not have, and
500 (the traceback only in the server's log) for a bug. Exports are written under `exports`
only, in a folder named by a sanitised name: nothing a request says reaches another path.
"""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json
import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from queries import get_query, list_queries, render
from warehouse.core import schema
from warehouse.core.anatomy import anatomy
from warehouse.core.errors import WarehouseError
from warehouse.core.ids import case_key
from warehouse.exports.bundle import FORMATS, export_cohort
from warehouse.exports.bundle_tables import safe_name
from warehouse.web.cases import Cases, NotFound

if TYPE_CHECKING:
    from warehouse.api import Warehouse

STATIC = Path(__file__).parent / "static"
VIEWER = STATIC / "vendor" / "niivue.js"
PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
MAX_REGIONS = 20  # suggestions per autocomplete request
CHOICES = {"ct_rate_label": schema.CT_RATE_LABELS}  # typed parameters with a fixed list: a select in the form
Explain = Callable[[BaseException], "tuple[str, int, list[str]] | None"]
log = logging.getLogger("radgenome.serve")


class BadRequest(WarehouseError):
    """A request the API cannot read (missing field, wrong type)."""


def viewer_built() -> bool:
    """Whether `make web` vendored the browser viewer into the package."""
    return VIEWER.is_file()


def create_app(wh: Warehouse, *, exports: Path, explain: Explain | None = None) -> Starlette:
    """The app over `wh` (kept open by the caller); exports go under `exports`. `explain` turns an
    exception into the CLI's one-line message (None: the exception's own text for project errors)."""
    cases = Cases(wh)
    exports = Path(exports).expanduser().resolve()

    def one_line(e: BaseException) -> tuple[str, int] | None:
        if isinstance(e, WarehouseError):
            return " ".join(str(e).split()), 404 if isinstance(e, NotFound) else 400
        explained = explain(e) if explain is not None else None
        return (explained[0], 400) if explained else None

    async def on_error(request: Request, e: Exception) -> Response:
        said = one_line(e)
        if said is None:
            log.exception("internal error on %s", request.url.path)
            said = ("internal error: the server's log has the details", 500)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": said[0]}, status_code=said[1])
        return _page_error(said[0], said[1])

    async def on_http(request: Request, e: HTTPException) -> Response:
        text = "no such page" if e.status_code == 404 else str(e.detail)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": f"{text}: {request.url.path}"}, status_code=e.status_code)
        return _page_error(f"{text}: {request.url.path}", e.status_code)

    def info(request: Request) -> Response:
        m = wh.manifest
        return JSONResponse({"snapshot_id": wh.snapshot_id, "root": str(wh.root),
                             "row_counts": m.get("row_counts", {}), "viewer": viewer_built(),
                             "formats": list(FORMATS)})

    def schema_(request: Request) -> Response:
        counts = wh.manifest.get("row_counts", {})
        return JSONResponse([{"table": name, "description": schema.description(t), "rows": counts.get(name),
                              "columns": [{"name": f.name, "type": str(f.type), "description": schema.description(f)}
                                          for f in t]} for name, t in schema.TABLES.items()])

    def queries_(request: Request) -> Response:
        return JSONResponse([{"name": q.name, "description": q.description, "returns": list(q.returns),
                              "example": dict(q.example),
                              "params": [{"name": p.name, "type": p.type, "description": p.description,
                                          "default": _cell(p.default), "required": p.required,
                                          "choices": list(p.choices) or list(CHOICES.get(p.type, ()))}
                                         for p in q.params]}
                             for q in list_queries()])

    def regions(request: Request) -> Response:
        text = request.query_params.get("q", "").strip().lower()
        dag = anatomy()
        hits: dict[str, str] = {}
        for r in dag:  # names first, then synonyms and released paths
            if text in r.name.lower():
                hits.setdefault(r.name, r.name)
        for r in dag:
            for alias in (*r.synonyms, *r.paths):
                if text and text in alias.lower():
                    hits.setdefault(r.name, alias)
        ranked = sorted(hits, key=lambda n: (not n.lower().startswith(text), len(n), n))[:MAX_REGIONS]
        return JSONResponse([{"name": n, "region_id": dag.get(n).region_id, "matched": hits[n]} for n in ranked])

    def terms(request: Request) -> Response:
        text = request.query_params.get("q", "").strip().lower()
        df = wh.sql("""SELECT term FROM finding_terms
                       WHERE contains(term, $t) OR contains(lower(array_to_string(synonyms, '|')), $t)
                       ORDER BY NOT contains(term, $t), NOT starts_with(term, $t), length(term), term LIMIT $n""",
                    {"t": text, "n": MAX_REGIONS})
        return JSONResponse(df["term"].to_list())

    async def sql(request: Request) -> Response:
        body = await _json(request)
        return _page(wh, _text(body, "sql"), _params(body), body)

    async def query(request: Request) -> Response:
        body = await _json(request)
        text, bound = render(request.path_params["name"], **_params(body))
        return _page(wh, text, bound, body)

    def download(request: Request) -> Response:
        q = request.query_params
        fmt = q.get("format", "csv")
        if fmt not in ("csv", "parquet"):
            raise BadRequest(f"format {fmt!r}: choose csv or parquet")
        try:
            given = json.loads(q.get("params") or "{}")
        except ValueError:
            raise BadRequest("'params' must be a JSON object of name: value") from None
        text, bound = _statement(q.get("sql"), q.get("query"), _params({"params": given}))
        table = wh.arrow(text, bound)
        buf = io.BytesIO()
        if fmt == "csv":
            import pyarrow.csv as pcsv

            pcsv.write_csv(table, buf)
        else:
            import pyarrow.parquet as pq

            pq.write_table(table, buf, compression="zstd")
        name = f"{safe_name(q.get('query') or 'result')}.{fmt}"
        return Response(buf.getvalue(), media_type="text/csv" if fmt == "csv" else "application/vnd.apache.parquet",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def export(request: Request) -> Response:
        body = await _json(request)
        name = safe_name(_text(body, "name", "cohort"))
        masks = body.get("masks") or []
        masks = masks.split(",") if isinstance(masks, str) else masks if isinstance(masks, list) else [masks]
        masks = [str(m).strip() for m in masks if str(m).strip()]
        kwargs = {"sql": body.get("sql"), "query": body.get("query"), "params": _params(body),
                  "images": bool(body.get("images")), "masks": masks, "crop": str(body.get("crop") or "") or None,
                  "margin_mm": _number(body, "margin_mm", 10.0), "dry_run": bool(body.get("dry_run")),
                  "format": str(body.get("format") or "bundle")}
        summary = export_cohort(wh, exports / name, **kwargs)
        return JSONResponse({"summary": str(summary), "cases": summary.cases, "files": summary.files,
                             "bytes": summary.bytes, "dry_run": summary.dry_run, "notes": summary.notes[:20],
                             "out_dir": str(summary.out_dir)})

    def open_case(request: Request) -> Response:
        key = case_key(request.query_params.get("case_id", ""))
        cases.case_id(key)
        return RedirectResponse(f"/case/{key}", status_code=303)

    def case_page(request: Request) -> Response:
        cases.case_id(request.path_params["key"])  # a missing case is a 404 page, not an empty viewer
        return FileResponse(STATIC / "case.html")

    def case_info(request: Request) -> Response:
        return JSONResponse(_cell(cases.info(request.path_params["key"])))

    def image(request: Request) -> Response:
        return _nifti(cases.image_nifti(request.path_params["key"]))

    def mask(request: Request) -> Response:
        return _nifti(cases.mask_nifti(request.path_params["key"], request.path_params["region"]))

    def slice_(request: Request) -> Response:
        p = request.path_params
        png = cases.slice_png(p["key"], p["view"], p["index"], request.query_params.get("window", "lung"))
        return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})

    routes = [
        Route("/", lambda r: FileResponse(STATIC / "index.html")),
        Route("/open", open_case),
        Route("/case/{key}", case_page),
        Route("/api/info", info),
        Route("/api/schema", schema_),
        Route("/api/queries", queries_),
        Route("/api/regions", regions),
        Route("/api/terms", terms),
        Route("/api/sql", sql, methods=["POST"]),
        Route("/api/query/{name}", query, methods=["POST"]),
        Route("/api/download", download),
        Route("/api/export", export, methods=["POST"]),
        Route("/api/case/{key}", case_info),
        Route("/api/case/{key}/image.nii.gz", image),
        Route("/api/case/{key}/mask/{region}.nii.gz", mask),
        Route("/api/case/{key}/slice/{view}/{index:int}.png", slice_),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: on_http, Exception: on_error})


# -- requests and results ---------------------------------------------------------------------------------
async def _json(request: Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _text(body: dict, key: str, default: str | None = None) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"give {key!r} as text")
    return value


def _number(body: dict, key: str, default: float) -> float:
    try:
        return float(body.get(key, default))
    except (TypeError, ValueError):
        raise BadRequest(f"give {key!r} as a number") from None


def _params(body: dict) -> dict[str, Any]:
    params = body.get("params") or {}
    if not isinstance(params, dict):
        raise BadRequest("'params' must be an object of name: value")
    return {k: v for k, v in params.items() if v is not None and v != ""}  # an empty form field: the default


def _statement(sql: str | None, query: str | None, params: dict) -> tuple[str, dict]:
    if (sql is None) == (query is None):
        raise BadRequest("give exactly one of sql or query")
    if query is not None:
        get_query(query)
        return render(query, **params)
    return sql, params


def _page(wh: Warehouse, text: str, params: dict, body: dict) -> Response:
    """One page of the result of `text`, and one row more to tell whether another page follows."""
    try:
        page = max(0, int(body.get("page", 0)))
        size = min(MAX_PAGE_SIZE, max(1, int(body.get("page_size", PAGE_SIZE))))
    except (TypeError, ValueError):
        raise BadRequest("page and page_size must be integers") from None
    t0 = time.perf_counter()
    df = wh.page(text, params, limit=size + 1, offset=page * size)
    seconds = time.perf_counter() - t0
    rows = [[_cell(v) for v in row] for row in df.rows()[:size]]
    return JSONResponse({"columns": df.columns, "types": [str(t) for t in df.dtypes], "rows": rows, "page": page,
                         "page_size": size, "more": df.height > size, "seconds": round(seconds, 4)})


def _cell(value: Any) -> Any:
    """A value as JSON takes it: dates as ISO text, decimals as numbers, non-finite floats as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _cell(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_cell(v) for v in value]
    if isinstance(value, dt.date | dt.datetime | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def _nifti(data: bytes) -> Response:
    return Response(data, media_type="application/gzip", headers={"Cache-Control": "private, max-age=3600"})


def _page_error(message: str, status: int) -> HTMLResponse:
    """The 404 (or error) page: the one line, and a way home."""
    template = (STATIC / "error.html").read_text(encoding="utf-8")
    escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return HTMLResponse(template.replace("{{status}}", str(status)).replace("{{message}}", escaped),
                        status_code=status)
