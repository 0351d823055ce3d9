"""The measurement pipeline's seams: specs, observers and an injected round runner."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import FakeRoundRunner, MakeTree
from pytest_importcache import ImportEnv
from pytest_importcache.engine.measurer import Measurer
from pytest_importcache.model.errors import ImportCacheError, RoundCrashedError
from pytest_importcache.model.records import RoundReport
from pytest_importcache.model.result import ImportResult
from pytest_importcache.model.spec import DEFAULT_ROUNDS, DEFAULT_WARMUP, MeasurementSpec


class Seen:
    """An observer that keeps what it is told."""

    def __init__(self) -> None:
        self.rounds: list[tuple[str, int, str]] = []
        self.results: list[ImportResult] = []

    def round_done(self, spec: MeasurementSpec, index: int, report: RoundReport) -> None:
        self.rounds.append((spec.label, index, report.stderr))

    def measured(self, spec: MeasurementSpec, result: ImportResult) -> None:
        self.results.append(result)


def test_observers_see_every_round_warm_up_first_then_the_result(
    make_tree: MakeTree, tmp_path: Path
) -> None:
    seen = Seen()
    runner = FakeRoundRunner([0.5, 0.1, 0.2, 0.3])
    measurer = Measurer(
        cache_dir=tmp_path,
        search_path=[str(make_tree({"tiny.py": ""}))],
        observers=[seen],
        round_runner=runner,
    )
    result = measurer.measure(MeasurementSpec("tiny", flavour="cold", rounds=3, warmup=1))
    assert [index for _, index, _ in seen.rounds] == [0, 1, 2, 3]
    assert seen.rounds[0][2] == "cold round 1 of 1 before counting"
    assert seen.rounds[3][2] == "cold round 3 of 3"
    assert seen.results == [result]
    # The warm-up round (0.5 s) is not counted.
    assert result.wall == pytest.approx((0.1, 0.2, 0.3))
    assert result.min == pytest.approx(0.1)


def test_the_fake_rounds_build_the_module_tree(make_tree: MakeTree, tmp_path: Path) -> None:
    runner = FakeRoundRunner([0.01], modules=("pkg.helper", "decimal"))
    measurer = Measurer(
        cache_dir=tmp_path,
        search_path=[str(make_tree({"pkg/__init__.py": ""}))],
        round_runner=runner,
    )
    result = measurer.measure(MeasurementSpec("pkg", flavour="cold", rounds=2, warmup=0))
    assert list(result.modules) == ["pkg.helper", "decimal", "pkg"]
    assert runner.calls == 2


def test_the_defaults_live_in_the_spec() -> None:
    spec = MeasurementSpec("mylib")
    assert (spec.flavour, spec.rounds, spec.warmup) == ("warm", DEFAULT_ROUNDS, DEFAULT_WARMUP)
    assert spec.replace(flavour="cold", closure=True).label == "closure-cold"
    with pytest.raises(ValueError, match="closure=True measures a cold import"):
        spec.replace(closure=True)


def test_an_environments_path_and_repr_create_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    env = ImportEnv("warm")
    assert env.path.is_relative_to(tmp_path)
    assert "ImportEnv('warm'" in repr(env)
    assert list(tmp_path.iterdir()) == []


def test_a_round_runner_that_returns_no_report_is_one_error(
    make_tree: MakeTree, tmp_path: Path
) -> None:
    def forgetful_runner(module: str, roots: object, workdir: object, **options: object) -> None:
        return None

    measurer = Measurer(
        cache_dir=tmp_path,
        search_path=[str(make_tree({"pkg/__init__.py": ""}))],
        round_runner=forgetful_runner,  # type: ignore[arg-type]
    )
    with pytest.raises(RoundCrashedError) as caught:
        measurer.measure(MeasurementSpec("pkg", flavour="cold", rounds=1, warmup=0))
    assert str(caught.value) == (
        "the round runner test_a_round_runner_that_returns_no_report_is_one_error.<locals>."
        "forgetful_runner returned NoneType, not a RoundReport"
    )


@pytest.mark.parametrize(
    "settings",
    [
        {"flavour": "tepid"},
        {"timeout": -1},
        {"metric": "cycles"},
        {"flavour": "warm", "closure": True},
        {"rounds": 0},
    ],
)
def test_invalid_settings_are_errors_of_the_package(settings: dict[str, object]) -> None:
    with pytest.raises(ImportCacheError) as caught:
        MeasurementSpec("json", **settings)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    assert "\n" not in str(caught.value)
