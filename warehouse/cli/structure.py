"""Report structuring commands: `structure`, `label` and `eval grounding|labels`.

`structure` and `label` are `ingest.structure.io.structure_csv`: CT-RATE reports in, RadGenome
region reports or CT-RATE labels out, with the rows that could not be structured named on stderr
and in `OUT.errors.csv`; `eval` is `ingest.structure.eval`, scoring against released truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from warehouse.core.errors import WarehouseError

if TYPE_CHECKING:
    from ingest.structure import StructuringBackend

BackendOpt = Annotated[str, typer.Option("--backend", help="rules (default), vllm or openai.")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="Model path (vllm) or name (openai).")]
UrlOpt = Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible server URL (openai).")]
WorkersOpt = Annotated[int, typer.Option("--workers", min=1, help="Processes to structure with.")]
PartOpt = Annotated[str | None, typer.Option("--part", help="Score one stable share of the cases: k/n, e.g. 1/2.")]
InputArg = Annotated[Path, typer.Argument(exists=True, dir_okay=False,
                                          help="CT-RATE reports CSV: VolumeName, Findings_EN[, Impressions_EN].")]
RegionTruth = Annotated[Path, typer.Option("--truth", exists=True, file_okay=False,
                                           help="Folder of RadGenome region-report CSVs (one per region).")]
LabelTruth = Annotated[Path, typer.Option("--truth", exists=True, dir_okay=False,
                                          help="CSV: AccessionNo,report_text + 18 manual labels.")]


def _backend(name: str, model: str | None, base_url: str | None) -> StructuringBackend:
    """`get_backend` from the options given; a backend refusing one is a usage error, not a bug."""
    from ingest.structure import get_backend

    options = {k: v for k, v in (("model", model), ("base_url", base_url)) if v is not None}
    try:
        return get_backend(name, **options)
    except TypeError as e:
        raise WarehouseError(f"backend {name!r} does not take {', '.join(options)}: {e}", stage="structure") from None


def _structure(input_csv: Path, out: Path, kind: str, backend: str, model: str | None, base_url: str | None,
               workers: int) -> None:
    """`ingest.structure.io.structure_csv` with a progress bar; its summary on stderr, the first rows that
    failed in yellow; exit 1 when no report was structured."""
    from ingest.structure.io import structure_csv

    summary = structure_csv(input_csv, out, _backend(backend, model, base_url), kind=kind, workers=workers,
                            progress=True)
    typer.echo(summary.headline, err=True)
    if lines := summary.error_lines():
        typer.secho(lines[0], err=True, fg="yellow")
        for line in lines[1:]:
            typer.echo(line, err=True)
    if not summary.ok:
        raise typer.Exit(1)


def _print_scores(scores, summary: str, key_name: str, title: str) -> None:
    from ingest.structure.eval import format_table

    rows = list(format_table(scores, summary, key_name))
    width = max(len(r[0]) for r in rows)
    typer.echo(f"{title:<{width}}  precision  recall     F1")
    for key, p, r, f in rows:
        typer.echo(f"{key:<{width}}  {p:>9}  {r:>6}  {f:>6}")
    if scores.errors:
        typer.secho(f"{len(scores.errors)} case(s) could not be structured, e.g. {scores.errors[0]}", err=True,
                    fg="yellow")


def register(app: typer.Typer) -> None:
    @app.command("structure")
    def structure(
        input_csv: InputArg,
        out: Annotated[Path, typer.Option("-o", "--output", help="RadGenome region_report CSV to write.")],
        backend: BackendOpt = "rules", model: ModelOpt = None, base_url: UrlOpt = None, workers: WorkersOpt = 1,
    ) -> None:
        """Ground each report's sentences in the anatomy: RadGenome's region_report format out."""
        _structure(input_csv, out, "region_report", backend, model, base_url, workers)

    @app.command("label")
    def label(
        input_csv: InputArg,
        out: Annotated[Path, typer.Option("-o", "--output", help="CT-RATE multi_abnormality_labels CSV to write.")],
        backend: BackendOpt = "rules", model: ModelOpt = None, base_url: UrlOpt = None, workers: WorkersOpt = 1,
    ) -> None:
        """The 18 CT-RATE abnormality labels (0/1) of each report."""
        _structure(input_csv, out, "labels", backend, model, base_url, workers)

    eval_app = typer.Typer(help="Score report structuring against released truth.", no_args_is_help=True)
    app.add_typer(eval_app, name="eval")

    @eval_app.command("grounding")
    def eval_grounding(
        truth: RegionTruth,
        part: PartOpt = None, backend: BackendOpt = "rules", model: ModelOpt = None, base_url: UrlOpt = None,
    ) -> None:
        """Token micro-F1 of each top-level region's paragraph, per region and overall."""
        from ingest.structure.eval import eval_grounding as run

        scores = run(truth, _backend(backend, model, base_url), part=part)
        _print_scores(scores, "micro", "volumes", "region")

    @eval_app.command("labels")
    def eval_labels(
        truth: LabelTruth,
        part: PartOpt = None, backend: BackendOpt = "rules", model: ModelOpt = None, base_url: UrlOpt = None,
        via: Annotated[str, typer.Option(
            help="labels: the labeller's 18 values; findings: a class is positive when a present finding is "
                 "evidence for it (findings.ct_rate_label), as label_evidence shows.")] = "labels",
    ) -> None:
        """Per-class F1 of the 18 CT-RATE labels and their macro-F1."""
        from ingest.structure.eval import LABEL_PATHS
        from ingest.structure.eval import eval_labels as run

        if via not in LABEL_PATHS:
            raise typer.BadParameter(f"choose one of {', '.join(LABEL_PATHS)}", param_hint="--via")
        scores = run(truth, _backend(backend, model, base_url), part=part, via=via)
        _print_scores(scores, "macro", "reports", "class")
