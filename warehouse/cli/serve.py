"""`radgenome serve`: the local web app (SQL console, named queries, case viewer) over one snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from warehouse.cli._output import WarehouseOpt, open_warehouse

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        warehouse: WarehouseOpt,
        port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
        host: Annotated[str, typer.Option(help="Address to bind; the default serves this machine only.")]
        = "127.0.0.1",
        exports: Annotated[Path, typer.Option(help="Folder the page's cohort exports are written under.")]
        = Path("exports"),
        snapshot: Annotated[str | None, typer.Option(help="Snapshot id (default: latest).")] = None,
    ) -> None:
        """Serve a read-only web page over the warehouse: a SQL console with the schema beside it, the
        named queries as forms, case pages (the CT in three views with region masks, the grounded report
        beside it) and cohort exports. Example: radgenome serve -w build/demo, then open
        http://127.0.0.1:8000"""
        import uvicorn

        from warehouse.cli import explain
        from warehouse.web.app import create_app, viewer_built

        with open_warehouse(warehouse, snapshot) as wh:
            app_ = create_app(wh, exports=exports, explain=explain)
            config = uvicorn.Config(app_, host=host, port=port, log_level="warning", access_log=False)
            server = uvicorn.Server(config)
            if host not in LOCAL_HOSTS:
                typer.secho(f"warning: serving on {host}: anyone who can reach it can read this warehouse",
                            fg="yellow", err=True)
            if not viewer_built():
                typer.secho("warning: the CT viewer is not built into this installation (run `make web`); "
                            "the console and reports work without it", fg="yellow", err=True)
            shown = f"[{host}]" if ":" in host else host
            typer.echo(f"serving snapshot {wh.snapshot_id} of {wh.root} at http://{shown}:{port} (Ctrl-C stops)")
            server.run()
