"""helpers.results: floors that fail on NaN and missing metrics, records marked passed / failed, smoke runs."""
import json
import math

import pytest

from helpers import config
from helpers import results as results_mod
from helpers.results import Results, format_table


@pytest.fixture
def runs(tmp_path, monkeypatch):
    d = tmp_path / "runs"
    monkeypatch.setenv("HELPERS_RUNS", str(d))
    monkeypatch.setenv("HELPERS_DEVICE", "cpu")
    monkeypatch.delenv("HELPERS_SMOKE", raising=False)
    return d


def _record(runs, name="nb"):
    return json.loads((runs / f"{name}.json").read_text())


@pytest.mark.parametrize("value, why", [(float("nan"), "not finite"), (float("inf"), "not finite"),
                                        (None, "missing"), (7.9, "below floor")])
def test_a_failed_check_raises_and_writes_the_record_marked_failed(runs, value, why):
    res = Results("nb")
    res.add(other=1.0, **({} if value is None else {"score": value}))
    with pytest.raises(AssertionError, match=r"quality regression in nb .*score") as err:
        res.check(score=8.0, other=0.5)
    assert str(runs / "nb.json") in str(err.value)
    rec = _record(runs)  # written before raising, without a save() call
    checks = rec["checks"]
    assert checks["passed"] is False and checks["floors"] == {"score": 8.0, "other": 0.5}
    assert list(checks["failed"]) == ["score"] and checks["failed"]["score"]["why"] == why
    assert checks["failed"]["score"]["floor"] == 8.0
    if value is None:
        assert checks["failed"]["score"]["value"] is None
    elif math.isnan(value):
        assert math.isnan(checks["failed"]["score"]["value"])
    assert rec["metrics"]["other"] == 1.0
    assert "FAILED: score" in format_table([rec])


def test_nan_is_not_above_any_floor(runs):
    res = Results("nb")
    res.add(fid_improvement=float("nan"))
    with pytest.raises(AssertionError, match="fid_improvement is nan"):
        res.check(fid_improvement=8.0)


def test_a_passed_check_is_written_by_save(runs, capsys):
    res = Results("nb")
    res.add(score=9.0)
    res.check(score=8.0)
    assert "checks passed: score 9.0000 >= 8.0" in capsys.readouterr().out
    assert not (runs / "nb.json").exists(), "a pass is written by the save() that follows"
    res.save()
    rec = _record(runs)
    assert rec["checks"] == {"passed": True, "floors": {"score": 8.0}} and rec["smoke"] is False
    assert "checks" in capsys.readouterr().out


def test_several_checks_add_up(runs):
    res = Results("nb")
    res.add(a=1.0, b=0.0)
    res.check(a=0.5)
    with pytest.raises(AssertionError):
        res.check(b=0.5)
    assert _record(runs)["checks"]["passed"] is False
    assert _record(runs)["checks"]["floors"] == {"a": 0.5, "b": 0.5}


def test_smoke_run_records_metrics_and_does_not_enforce_floors(runs, monkeypatch, capsys):
    monkeypatch.setenv("HELPERS_SMOKE", "1")
    res = Results("nb")
    res.add(score=float("nan"), low=0.1)
    res.check(score=8.0, low=0.9, missing=1.0)  # no raise
    assert "floors not enforced" in capsys.readouterr().out
    res.save()
    rec = _record(runs)
    assert rec["smoke"] is True and rec["metrics"]["low"] == 0.1 and math.isnan(rec["metrics"]["score"])
    assert rec["checks"] == {"passed": None, "why": "smoke run", "floors": {"score": 8.0, "low": 0.9, "missing": 1.0}}
    table = format_table([rec])
    assert "not enforced (smoke run)" in table and " smoke " in table


def test_floors_report_records_metrics_and_does_not_enforce_floors(runs, monkeypatch, capsys):
    """HELPERS_FLOORS=report (stand-in weights): a metric below its floor is reported, and the run goes on."""
    monkeypatch.setenv("HELPERS_FLOORS", "report")
    res = Results("nb")
    res.add(low=0.1)
    res.check(low=0.9)  # no raise
    assert "HELPERS_FLOORS=report: floors not enforced: low 0.1000 (floor 0.9)" in capsys.readouterr().out
    res.save()
    assert "not enforced (HELPERS_FLOORS=report)" in format_table([_record(runs)])
    monkeypatch.setenv("HELPERS_FLOORS", "enforce")
    with pytest.raises(AssertionError, match="quality regression"):
        res.check(low=0.9)
    monkeypatch.setenv("HELPERS_FLOORS", "skip")
    with pytest.raises(ValueError, match="HELPERS_FLOORS='skip'"):
        res.check(low=0.9)


def test_main_shows_check_status_and_fails_on_a_failed_record(runs, capsys):
    ok = Results("a_ok")
    ok.add(score=1.0)
    ok.check(score=0.5)
    ok.save()
    unchecked = Results("b_unchecked")
    unchecked.add(score=1.0)
    unchecked.save()
    capsys.readouterr()
    assert results_mod.main([]) == 0
    out = capsys.readouterr().out
    assert "passed" in out and "not checked" in out
    bad = Results("c_bad")
    bad.add(score=0.1)
    with pytest.raises(AssertionError):
        bad.check(score=0.5)
    capsys.readouterr()
    assert results_mod.main([]) == 1
    assert "FAILED: score" in capsys.readouterr().out


def test_machine_counts_usable_cores(runs, monkeypatch):
    monkeypatch.setattr(results_mod.config, "cpu_count", lambda: 3)
    assert results_mod.machine().startswith("cpu: 3 cores")


def test_main_reads_records_not_the_cell_times_beside_them(runs, capsys):
    """`make smoke` writes benchmarks/notebook_times.py's <notebook>.times.json next to the records."""
    ok = Results("a_ok")
    ok.add(score=1.0)
    ok.save()
    (config.runs_dir() / "a_ok.times.json").write_text('{"notebook": "a_ok", "seconds": 1.0, "cells": []}')
    capsys.readouterr()
    assert results_mod.main([]) == 0
    assert "a_ok" in capsys.readouterr().out
