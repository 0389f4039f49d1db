from __future__ import annotations

from pathlib import Path

import pytest

from hpsearch.errors import SpecError
from hpsearch.spec import (
    StudySpec,
    load_spec,
    param_name,
    param_path,
    parse_spec,
    read_stored_spec,
)
from tests.conftest import tiny_study

STUDIES = Path(__file__).resolve().parents[3] / "studies"


def problems_of(data: object) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return dict(info.value.problems)


@pytest.mark.parametrize("name", ["digits", "shapes", "cifar10"])
def test_bundled_specs_load_by_path_and_by_name(name: str) -> None:
    by_path = load_spec(STUDIES / f"{name}.yaml")
    assert by_path == load_spec(name)
    assert by_path.dataset.name == name


def test_defaults_follow_the_recipe() -> None:
    spec = StudySpec()
    assert spec.recipe.sanity.initial_loss_tolerance == 0.15
    assert spec.recipe.sanity.overfit_batches == 5
    assert spec.recipe.sanity.overfit_steps == 300
    assert (spec.recipe.range_test.min_lr, spec.recipe.range_test.max_lr) == (1e-6, 10.0)
    assert spec.recipe.coarse.trials == 30
    assert spec.recipe.coarse.epochs == 3
    assert (spec.search.weight_decay.low, spec.search.weight_decay.high) == (1e-6, 1e-2)
    assert spec.recipe.refine.trials == 15
    assert spec.recipe.refine.rounds == 2
    assert spec.recipe.refine.min_gain == 0.005
    assert spec.recipe.refine.margin == 2.0
    assert spec.recipe.final.epochs == 30
    assert spec.recipe.final.overfit_gap == 0.10


def test_unknown_field_is_named_with_a_suggestion() -> None:
    problems = problems_of({"model": {"dropuot": 0.2}})
    assert "model.dropuot" in problems
    assert "unknown field" in problems["model.dropuot"]
    assert "did you mean 'dropout'" in problems["model.dropuot"]


def test_negative_learning_rate_is_named() -> None:
    problems = problems_of({"train": {"lr": -0.1}})
    assert "greater than 0" in problems["train.lr"]
    assert "-0.1" in problems["train.lr"]


def test_unknown_optimizer_lists_the_known_ones() -> None:
    message = problems_of({"train": {"optimizer": "adamax"}})["train.optimizer"]
    assert "'adamax'" in message
    assert "'nesterov'" in message
    assert "'adamw'" in message


def test_dropout_above_one_is_named() -> None:
    assert "less than 1" in problems_of({"model": {"dropout": 1.5}})["model.dropout"]


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of({"train": {"lr": 0, "batch_size": 0}, "model": {"norm": "weird"}})
    assert {"train.lr", "train.batch_size", "model.norm"} <= set(problems)


def test_flip_on_digits_is_rejected_as_not_label_preserving() -> None:
    problems = problems_of({"dataset": {"name": "digits"}, "augment": {"flip": True}})
    assert "do not preserve digits labels" in problems["augment.flip"]


def test_cross_field_rules_name_the_field() -> None:
    assert "model.stochastic_depth" in problems_of({"model": {"stochastic_depth": 0.1}})
    assert "model.groups" in problems_of({"model": {"norm": "group", "groups": 5}})
    assert "augment.cutout" in problems_of({"augment": {"cutout": 8}})  # digits are 8x8
    assert "model.widths" in problems_of({"model": {"widths": [8, 8, 8, 8, 8]}})
    extra = problems_of({"search": {"extra": {"model.nope": {"low": 0, "high": 1, "log": False}}}})
    assert "does not name a field" in extra["search.extra.model.nope"]


def test_search_dimension_needs_a_positive_low_on_log_scale() -> None:
    problems = problems_of({"search": {"weight_decay": {"low": 0, "high": 1e-2}}})
    assert "search.weight_decay.low" in problems


def test_a_spec_that_is_not_a_mapping_is_rejected() -> None:
    assert "must be a mapping" in problems_of(["not", "a", "spec"])[""]


def test_file_that_is_not_yaml_names_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: [0.1\n  epochs: 3\n")
    with pytest.raises(SpecError) as info:
        load_spec(bad)
    assert "not valid YAML (line" in str(info.value)
    assert str(bad) in str(info.value)


def test_binary_file_is_rejected_as_not_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"\x80\x02\xff\xfe\x00garbage")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(bad)


def test_missing_file_lists_bundled_specs(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"no such file.*digits"):
        load_spec(tmp_path / "nope.yaml")


def test_json_spec_and_overrides(tmp_path: Path) -> None:
    file = tmp_path / "s.json"
    file.write_text('{"name": "j", "train": {"lr": 0.3}}')
    spec = load_spec(
        file, ["train.lr=0.05", "train.early_stopping_patience=4", "model.widths=[8, 16]"]
    )
    assert spec.name == "j"
    assert spec.train.lr == 0.05
    assert spec.train.early_stopping_patience == 4
    assert spec.model.widths == [8, 16]


def test_bad_overrides_are_named() -> None:
    with pytest.raises(SpecError) as info:
        load_spec("digits", ["train.lr"])
    assert "key.path=value" in str(info.value)
    with pytest.raises(SpecError) as info:
        load_spec("digits", ["train.lr.x=1"])
    assert "train.lr: is a value, not a section" in str(info.value)
    with pytest.raises(SpecError) as info:
        load_spec("digits", ["train.lrr=1"])
    assert "train.lrr" in str(info.value)


def test_the_searched_dimensions_are_listed_by_spec_path_in_one_order() -> None:
    spec = parse_spec(
        {
            "search": {
                "extra": {
                    "model.depth": {"low": 1, "high": 3, "log": False},
                    "model.dropout": {"low": 0.0, "high": 0.5, "log": False},
                }
            }
        }
    )
    dims = spec.search.dimensions()
    assert list(dims) == ["train.lr", "train.weight_decay", "model.depth", "model.dropout"]
    assert [d.integer for d in dims.values()] == [False, False, True, False]  # by the field's type
    assert (dims["train.lr"].low, dims["train.lr"].high) == (1e-4, 1.0)
    assert [param_name(path) for path in dims] == ["lr", "weight_decay", "model.depth",
                                                  "model.dropout"]  # fmt: skip
    assert all(param_path(param_name(path)) == path for path in dims)
    assert spec.search.bound_by("train.lr") == "search.lr"
    assert spec.search.bound_by("model.depth") == "search.extra.model.depth"


def test_a_spec_writes_its_ranges_as_low_high_log_and_refuses_integer() -> None:
    """A stored spec compares equal to the one it was launched with (``check_same_spec``):
    its ranges are written as they always were, never with the round's ``integer``."""
    spec = parse_spec({"search": {"extra": {"model.depth": {"low": 1, "high": 3}}}})
    search = spec.model_dump(mode="json")["search"]
    assert search["lr"] == {"low": 1e-4, "high": 1.0, "log": True}
    assert search["extra"] == {"model.depth": {"low": 1.0, "high": 3.0, "log": True}}
    assert parse_spec(spec.model_dump(mode="json")) == spec
    problems = problems_of({"search": {"lr": {"low": 1e-3, "high": 1.0, "integer": True}}})
    assert problems == {"search.lr.integer": "unknown field; known fields: low, high, log"}
    problems = problems_of({"search": {"lr": {"low": 1e-3, "hihg": 1.0}}})
    assert "known fields: low, high, log" in problems["search.lr.hihg"]


def test_a_stored_spec_past_todays_bounds_keeps_its_extra_dimensions() -> None:
    extra = {"model.dropout": {"low": 0.0, "high": 0.5, "log": False}}
    data = tiny_study("old", search={"extra": extra}).model_dump(mode="json")
    data["recipe"]["refine"]["rounds"] = 10**6  # stored by a version without the bound
    spec, problems = read_stored_spec(data, "the stored study")
    assert any("recipe.refine.rounds" in p for p in map(str, problems))
    assert spec.search.dimensions()["model.dropout"].high == 0.5
    assert spec.model_dump(mode="json")["search"]["extra"] == extra  # it reads back as stored
