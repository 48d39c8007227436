"""The Spark tier: every library query, transpiled by sqlglot, runs on Spark over the same Parquet
and gives DuckDB's answer. Skipped, with the reason, where pyspark or Java is missing."""

from __future__ import annotations

import importlib.util
import math
import os
import shutil

import pytest

from queries import get_query, list_queries, transpile
from queries.portable import catalog
from tests.fixtures import query_fixture as fx
from tests.fixtures.s3 import ENV as S3_ENV
from warehouse import Warehouse
from warehouse.core import schema
from warehouse.store.snapshot import open_snapshot

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas")]

if os.environ.get("RADGENOME_SKIP_SPARK"):
    pytest.skip("RADGENOME_SKIP_SPARK is set", allow_module_level=True)
if importlib.util.find_spec("pyspark") is None:
    pytest.skip("pyspark is not installed: `make test-spark` installs it from lock/spark.txt and runs the Spark tier",
                allow_module_level=True)
if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
    pytest.skip("no Java runtime (Spark needs Java 17)", allow_module_level=True)

# Parameter sets beyond each query's header example, to exercise optional and typed parameters.
EXTRA = [
    ("sentences_mentioning", {"region": "left lung", "term": "NODULE", "limit": 1}),
    ("sentences_mentioning", {"region": "aorta", "term": "' OR 1=1 --"}),
    ("top_abnormalities", {"split": "validation", "top": 2}),
    ("cases_region_volume", {"region": "heart", "min_ml": 700, "max_ml": 850}),
    ("label_prevalence_by_sex_age", {"label": "pleural effusion", "band_years": 20}),
    ("cohort_by_label", {"label": "lung nodule", "sex": "F"}),
    ("vqa_by_type_region", {"type": "presence", "region": "pleura"}),
    ("finding_size_distribution", {"term": "nodule", "bin_mm": 2.5}),
]
CASES = [(q.name, dict(q.example)) for q in list_queries()] + EXTRA


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory, s3_server):
    """The fixture published to a bucket (the S3 server of tests/fixtures/s3.py). Spark reads the
    snapshot's Parquet as fetched from the bucket into the local cache and checked against the
    commit's sha256: Spark's own S3 connector (hadoop-aws) needs jars that no registry here serves."""
    with pytest.MonkeyPatch.context() as env:
        for k, v in {**S3_ENV, "AWS_ENDPOINT_URL": s3_server.endpoint,
                     "RADGENOME_CACHE": str(tmp_path_factory.mktemp("cache"))}.items():
            env.setenv(k, v)
        root = f"s3://{s3_server.make_bucket()}/wh"
        fx.build(root)
        yield from _spark_over(root)


def _spark_over(root: str):
    snap = open_snapshot(root)
    try:
        from pyspark.sql import SparkSession

        spark = (SparkSession.builder.master("local[1]").appName("radgenome-queries-test")
                 .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1")
                 .config("spark.sql.session.timeZone", "UTC").config("spark.default.parallelism", "1")
                 .config("spark.sql.codegen.wholeStage", "false").getOrCreate())
    except Exception as e:  # no usable JVM, blocked ports, ...
        pytest.skip(f"Spark did not start: {e}")
    spark.sparkContext.setLogLevel("ERROR")
    for name in schema.TABLES:
        spark.read.parquet(str(snap.table_path(name))).createOrReplaceTempView(name)
    with Warehouse.open(root) as wh:
        yield wh, spark
    spark.stop()


def same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


@pytest.mark.parametrize(("name", "params"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_spark_gives_duckdbs_answer(warehouses, name, params):
    wh, spark = warehouses
    q = get_query(name)
    bound = q.bind(**params)
    expected = [tuple(r) for r in wh.sql(q.sql, bound).iter_rows()]
    res = transpile(q.sql, "spark")
    assert res.ok, res.problems
    got_df = spark.sql(res.sql, args={k: bound[k] for k in res.parameters})
    assert got_df.columns == list(q.returns)
    got = [tuple(r) for r in got_df.collect()]
    assert len(got) == len(expected), f"{name}: spark {got} != duckdb {expected}"
    for g, e in zip(got, expected, strict=True):
        assert all(same(x, y) for x, y in zip(g, e, strict=True)), f"{name}: spark {g} != duckdb {e}"
    assert expected or name == "patients_in_two_splits" or params, f"{name}: the fixture gives no rows"


def test_spark_catalog_file_matches_this_spark(warehouses):
    _, spark = warehouses
    names = {r[0] for r in spark.sql("SHOW FUNCTIONS").collect()}
    listed = catalog("spark")
    missing = listed - names
    assert not missing, f"catalogs/spark_functions.txt lists functions this Spark lacks: {sorted(missing)[:20]}"
    if spark.version == "4.3.0":  # the version the file was read from
        extra = {n for n in names if n.isidentifier() and n.lower() == n} - listed
        assert not extra, f"functions missing from catalogs/spark_functions.txt: {sorted(extra)[:20]}"
