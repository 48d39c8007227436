"""The CLI on a bucket root: the demo built into s3://, queried, exported, shown, listed and
garbage-collected, with the same answers and voxels as the demo built into a folder."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from tests.fixtures.cli import run
from warehouse import Warehouse


def test_the_demo_in_a_bucket_answers_like_the_demo_in_a_folder(bucket, s3_env, capsys, tmp_path):
    code, out, err = run(capsys, "demo", bucket, "--cases", "4", "--workers", "1")
    assert code == 0, err
    assert "snapshot 00001-" in out and bucket in out
    code, _, err = run(capsys, "demo", tmp_path / "local", "--cases", "4", "--workers", "1")
    assert code == 0, err
    q = "SELECT case_id, count(*) AS n FROM sentences GROUP BY ALL ORDER BY ALL"
    answers = []
    for root in (bucket, str(tmp_path / "local")):
        code, out, err = run(capsys, "sql", q, "-w", root, "--format", "json")
        assert code == 0, err
        answers.append(json.loads(out))
    assert answers[0] == answers[1] and len(answers[0]) == 4
    with Warehouse.open(bucket) as wh, Warehouse.open(tmp_path / "local") as wl:
        case = wl.sql("SELECT min(case_id) AS c FROM region_stats")["c"][0]
        a, b = wh.region_crop(case, "lung"), wl.region_crop(case, "lung")
        assert all((x == y).all() for x, y in zip(a, b, strict=True))

    exported = {}
    for name, root in (("bucket", bucket), ("local", str(tmp_path / "local"))):
        out = tmp_path / f"export-{name}"
        code, _, err = run(capsys, "export", "-w", root, "--sql", "SELECT case_id FROM cases", "--images",
                           "--masks", "lung,heart", "--crop", "lung", out)
        assert code == 0, err
        exported[name] = {p.relative_to(out): np.asarray(nib.load(p).dataobj) for p in out.rglob("*.nii.gz")}
        code, _, err = run(capsys, "show", case, "-w", root, "--region", "lung", "-o", tmp_path / f"{name}.png")
        assert code == 0 and (tmp_path / f"{name}.png").stat().st_size > 10_000, err
    assert exported["bucket"].keys() == exported["local"].keys() and len(exported["local"]) >= 8
    assert all(np.array_equal(exported["bucket"][k], exported["local"][k]) for k in exported["local"])


def test_snapshots_info_gc_query_and_release_on_a_bucket(bucket, s3_env, capsys, tmp_path):
    for seed in (0, 1):
        assert run(capsys, "demo", bucket, "--cases", "2", "--seed", str(seed), "--workers", "1")[0] == 0
    code, out, _ = run(capsys, "snapshots", "-w", bucket)
    ids = [line.split()[0] for line in out.splitlines()]
    assert code == 0 and [i[:5] for i in ids] == ["00001", "00002"]
    code, out, _ = run(capsys, "gc", "-w", bucket, "--keep", "1", "--grace", "0", "--dry-run")
    assert code == 0 and out.startswith("would delete 1 old snapshots") and ids[0] in out
    code, out, _ = run(capsys, "gc", "-w", bucket, "--keep", "1", "--grace", "0")
    assert code == 0 and out.startswith("deleted 1 old snapshots")
    code, out, _ = run(capsys, "snapshots", "-w", bucket)
    assert [line.split()[0] for line in out.splitlines()] == ids[1:]
    code, out, _ = run(capsys, "info", "-w", bucket)
    assert code == 0 and ids[1] in out
    code, out, err = run(capsys, "query", "top_abnormalities", "-w", bucket, "--format", "json")
    assert code == 0 and json.loads(out), err
    code, _, err = run(capsys, "export-release", "-w", bucket, tmp_path / "release")
    assert code == 0 and any((tmp_path / "release").rglob("*.csv")), err


def test_a_missing_bucket_is_one_line(s3_env, capsys):
    code, out, err = run(capsys, "sql", "SELECT 1", "-w", "s3://no-such-bucket-x/wh")
    assert code != 0 and "no-such-bucket-x" in err and "Traceback" not in err
