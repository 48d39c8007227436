"""`warehouse.core.errors`: one root error carrying case, file, stage and hint, shown as one line and
kept whole across pickling (process pools, Ray)."""

from __future__ import annotations

import pickle

import pytest

from queries.errors import QueryNotApplicableError, UnknownQueryError
from warehouse.core import errors
from warehouse.core.errors import (
    ArrayNotFoundError,
    GridMismatchError,
    IngestError,
    NotAWarehouseError,
    QueryLimitWarning,
    SnapshotNotFoundError,
    UnknownRegionError,
    WarehouseError,
)

CLASSES = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, WarehouseError)]


def test_str_is_one_line_with_the_context_given():
    e = GridMismatchError("mask 'heart' has shape (3, 3, 3)", case_id="train_1_a_1.nii.gz", file="heart.nii.gz",
                          stage="masks", hint="resample it")
    assert str(e) == ("mask 'heart' has shape (3, 3, 3) [case=train_1_a_1.nii.gz, file=heart.nii.gz, stage=masks] "
                      "— resample it")
    assert str(WarehouseError("plain")) == "plain"
    assert str(WarehouseError("only a stage", stage="image")) == "only a stage [stage=image]"
    assert str(WarehouseError("only a hint", hint="do this")) == "only a hint — do this"
    assert e.message == "mask 'heart' has shape (3, 3, 3)"  # the message alone, for error rows


@pytest.mark.parametrize("cls", [UnknownRegionError, ArrayNotFoundError, UnknownQueryError])
def test_key_errors_are_not_quoted(cls):
    e = cls("no region 'lungs'", hint="did you mean 'lung'?")
    assert isinstance(e, KeyError) and str(e) == "no region 'lungs' — did you mean 'lung'?"


@pytest.mark.parametrize("cls", CLASSES + [UnknownQueryError, QueryNotApplicableError])
def test_every_error_pickles_with_its_context(cls):
    e = cls("it failed", case_id="c1", file="f.csv", stage="reports", hint="fix it")
    back = pickle.loads(pickle.dumps(e))
    assert type(back) is cls and str(back) == str(e) and back.args == e.args
    assert (back.message, back.case_id, back.file, back.stage, back.hint) == ("it failed", "c1", "f.csv", "reports",
                                                                              "fix it")


def test_the_standard_classes_each_error_also_is():
    assert issubclass(NotAWarehouseError, FileNotFoundError) and issubclass(SnapshotNotFoundError, FileNotFoundError)
    assert issubclass(GridMismatchError, IngestError) and issubclass(IngestError, WarehouseError)
    assert issubclass(UnknownRegionError, KeyError) and issubclass(ArrayNotFoundError, KeyError)
    assert issubclass(QueryLimitWarning, UserWarning) and not issubclass(QueryLimitWarning, WarehouseError)
    with pytest.raises(FileNotFoundError):  # callers catching the builtin still catch ours
        raise NotAWarehouseError("/x is not a warehouse")


def test_exit_codes():
    assert {c.exit_code for c in CLASSES} == {2}  # usage-like mistakes
    assert QueryNotApplicableError("x").exit_code == 1  # a query that cannot apply: failed work
