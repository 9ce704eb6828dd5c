"""Baseline options: frozen configs built from keywords or spec strings, one clear error each."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dive.compressors._baseline import Baseline
from dive.compressors.dive import Dive, DiveConfig
from dive.compressors.learned import LearnedCompressor, LearnedConfig
from dive.compressors.matryoshka_adaptor import MatryoshkaAdaptorUnsup, MatryoshkaConfig
from dive.compressors.registry import REGISTRY, make_compressor, parse_spec
from dive.compressors.search_adaptor import SearchAdaptorConfig
from dive.compressors.smec import SMEC, SMECConfig
from dive.errors import DiveError

BASELINES = ["matryoshka-adaptor-unsup", "matryoshka-adaptor", "search-adaptor", "smec"]


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("matryoshka-adaptor-unsup:steps=-1", r"^matryoshka-adaptor-unsup: steps must be >= 0"),
        ("matryoshka-adaptor:corpus_batch=1", r"^matryoshka-adaptor: corpus_batch must be >= 2"),
        ("matryoshka-adaptor:weight_topk=-0.5", "weight_topk must be >= 0, got -0.5"),
        ("search-adaptor:hard_fraction=2", r"hard_fraction must be in \[0, 1\], got 2.0"),
        ("search-adaptor:lr=fast", "lr must be a number, got 'fast'"),
        ("dive:lr=inf", "^dive: lr must be a finite number, got inf"),
        ("smec:weight_xbm=-inf", "weight_xbm must be a finite number, got -inf"),
        ("dive:margin=nan", "margin must be a finite number, got nan"),
        ("smec:tau=0", "tau must be > 0"),
        ("smec:select=1", "select must be true or false"),
        ("smec:stage_layer=mlp", "stage_layer must be one of adapter, linear, none"),
        ("search-adaptor:weight_rec_grid=0/x", "weight_rec_grid must be finite numbers >= 0"),
        ("matryoshka-adaptor:lr_grid=0.001/0", "lr_grid must be finite numbers > 0"),
        ("smec:lr_grid=inf/0.001", "lr_grid must be finite numbers > 0 separated by '/'"),
        ("search-adaptor:weight_rec_grid=0/nan", "weight_rec_grid must be finite numbers >= 0"),
        ("matryoshka-adaptor:dims=all", "dims must be one of nested, single"),
        ("smec:memory_size=true", "memory_size must be an integer"),
        ("smec:basis=svd", "basis must be one of identity, pca, select, got 'svd'"),
        ("smec:hidden=wide", "hidden must be an integer or none"),
    ],
)
def test_bad_values_name_the_method_the_option_and_the_rule(spec: str, match: str) -> None:
    with pytest.raises(DiveError, match=match):
        make_compressor(spec, 4)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        # a float option written as an integer past float's range: OverflowError, a traceback
        ("dive:lr=1" + "0" * 400, r"^dive: lr must be a finite number, got 1000000000\.\.\."
                                  r"000000 \(401 digits\)$"),
        # past a C int: torch's set_num_threads raised ctypes' OverflowError
        ("dive:threads=99999999999999999999", r"^dive: threads must be between -2147483647 and "
                                              r"2147483647, got 99999999999999999999$"),
        ("smec:memory_size=-99999999999", r"memory_size must be between -2147483647 and"),
        # int() and float() read these; a space before the key was already refused
        ("dive:heads=1_0", r"^dive: heads must be an integer, got '1_0'$"),
        ("dive:heads= 2", r"^dive: heads must be an integer, got ' 2'$"),
        ("dive:heads=\u0663", r"^dive: heads must be an integer, got '\u0663'$"),
        ("dive:lr=\u0661e-\u0663", r"^dive: lr must be a number, got '\u0661e-\u0663'$"),
        # each is drawn from the corpus batch: a larger value was cut to it without a word,
        # and config.json recorded the value given
        ("dive:ntxent_items=1000", r"^dive: ntxent_items must be <= corpus_batch \(128\), got "
                                   r"1000$"),
        ("dive:corpus_batch=64:anchor_neighbours=64", r"^dive: anchor_neighbours must be < "
                                                      r"corpus_batch \(64\), got 64$"),
        ("smec:memory_size=8:memory_neighbours=50", r"^smec: memory_neighbours must be < "
                                                    r"memory_size \(8\), got 50$"),
        ("matryoshka-adaptor:max_pool=4:neighbours=50", r"^matryoshka-adaptor: neighbours must "
                                                        r"be < max_pool \(4\), got 50$"),
        # read as none, which for mine_every is the old schedule, not anything automatic
        ("smec:mine_every=auto", r"^smec: mine_every must be an integer or none, got 'auto'$"),
        # only nDCG has a cutoff: with the log-rank rule it was recorded and never read
        ("dive:start_depth=100", r"^dive: start_depth must be 10 unless start_score=ndcg"),
        # a model whose outputs overflow float32 was saved, refused only when used
        ("dive:init_noise=1e30", r"^dive: init_noise must be <= 1 \(the std of noise added to "
                                 r"unit-norm principal axes\), got 1e\+30$"),
    ],
)
def test_values_it_would_misread_ignore_or_crash_on_are_refused(spec: str, match: str) -> None:
    with pytest.raises(DiveError, match=match):
        make_compressor(spec, 4)
    assert make_compressor("dive:lr=.5e-3:heads=+2:ntxent_items=128", 4).options.heads == 2


@pytest.mark.parametrize("method", BASELINES)
def test_unknown_options_list_the_valid_ones(method: str) -> None:
    with pytest.raises(DiveError, match=rf"^{method}: unknown option\(s\) nope; valid: hidden, lr"):
        make_compressor(f"{method}:nope=1", 4)


def test_spec_values_are_brought_to_the_field_types() -> None:
    model = make_compressor("smec:lr=1:hidden=none:stage_steps=7:select=false:lr_grid=0.01", 4)
    assert isinstance(model, SMEC)
    assert model.options.lr == 1.0 and isinstance(model.options.lr, float)
    assert model.options.hidden is None and model.options.stage_steps == 7
    assert model.options.select is False and model.options.lr_grid == "0.01"


@pytest.mark.parametrize("method", BASELINES)
def test_config_round_trips_through_json(method: str) -> None:
    model = REGISTRY[method](dim=8, seed=2, hidden=32, lr=0.002, basis="pca")
    rebuilt = REGISTRY[method](**json.loads(json.dumps(model.config())))
    assert rebuilt.config() == model.config()
    assert model.config()["threads"] == 1  # the kernels' sums depend on it: recorded


LEARNED = sorted(name for name, cls in REGISTRY.items() if issubclass(cls, LearnedCompressor))


def test_every_learned_method_shares_the_base() -> None:
    assert set(BASELINES) | {"dive", "dive-plus"} <= set(LEARNED)
    for name in LEARNED:
        assert issubclass(REGISTRY[name].config_class, LearnedConfig), name


@pytest.mark.parametrize("method", LEARNED)
def test_the_thread_count_is_recorded_as_it_can_change_the_model(method: str) -> None:
    """threads was left out of every record and config.json as "speed only", but a baseline
    fitted with 2 threads differs from its 1-thread fit, and its config replayed as 1."""
    model = make_compressor(f"{method}:threads=3", 4)
    assert model.options.threads == 3  # type: ignore[attr-defined]
    assert model.config()["threads"] == 3
    assert make_compressor(method, 4).config()["threads"] == 1
    rebuilt = REGISTRY[method](**json.loads(json.dumps(model.config())))  # a replay
    assert rebuilt.options.threads == 3  # type: ignore[attr-defined]


def test_dive_config_is_the_older_name_of_options() -> None:
    model = Dive(4, heads=2, workers=2)
    assert model.dive_config is model.options and model.options.heads == 2
    assert "workers" not in model.config() and model.options.workers == 2


@pytest.mark.parametrize("method", BASELINES)
def test_the_old_patience_name_maps_to_patience_steps(method: str) -> None:
    with pytest.warns(FutureWarning, match=f"^{method}: option patience is now patience_steps"):
        old = make_compressor(f"{method}:patience=75", 4)
    assert old.options.patience_steps == 75  # type: ignore[attr-defined]
    assert old.config() == make_compressor(f"{method}:patience_steps=75", 4).config()
    assert "patience" not in old.config()
    with pytest.raises(DiveError, match=f"^{method}: patience is the old name of patience_steps"):
        make_compressor(f"{method}:patience=75:patience_steps=75", 4)


def test_an_old_option_name_warns_at_the_callers_line() -> None:
    """From a spec string it pointed at dive's own registry (a fixed stacklevel), so
    `warnings.filterwarnings(module=...)` for the caller's module missed it."""
    from dive.compressors.search_adaptor import SearchAdaptor

    for make in (lambda: make_compressor("search-adaptor:patience=75", 4),
                 lambda: SearchAdaptor(4, patience=75)):
        with pytest.warns(FutureWarning) as caught:
            make()
        assert [w.filename for w in caught] == [__file__]


@pytest.mark.parametrize(
    ("method", "names"),
    [
        ("search-adaptor", ("query_batch",)),
        ("matryoshka-adaptor", ("corpus_batch", "query_batch")),
        ("smec", ("corpus_batch", "query_batch")),
    ],
)
def test_the_old_batch_size_sets_the_batches_it_used_to_size(
    method: str, names: tuple[str, ...]
) -> None:
    with pytest.warns(FutureWarning, match=f"^{method}: option batch_size is now {names[0]}"):
        old = make_compressor(f"{method}:batch_size=48", 4)
    assert all(getattr(old.options, name) == 48 for name in names)
    assert "batch_size" not in old.config()
    if "corpus_batch" not in names:  # Search-Adaptor samples no corpus batch
        assert not hasattr(old.options, "corpus_batch")
    with pytest.raises(DiveError, match="batch_size is the old name of"):
        make_compressor(f"{method}:batch_size=48:query_batch=48", 4)


def test_dive_has_no_patience_option() -> None:
    with pytest.raises(DiveError, match="unknown option"):
        make_compressor("dive:patience=2", 4)


def test_a_whole_config_can_be_passed_and_options_override_it() -> None:
    base = SMECConfig(stage_steps=5, tau=0.5)
    model = SMEC(4, config=base, tau=2.0)
    assert model.options == SMECConfig(stage_steps=5, tau=2.0)


def test_unsupervised_matryoshka_records_no_stage_two() -> None:
    config = make_compressor("matryoshka-adaptor-unsup", 4).config()
    assert config["supervised_steps"] == 0 and config["weight_rank"] == 0.0
    # given, they were taken without a word and recorded as 0 under a label naming them
    with pytest.raises(DiveError, match=r"^matryoshka-adaptor-unsup: lr_grid, supervised_steps "
                                        r"act on labelled queries \(the supervised stage, its "
                                        r"selection, its negatives\), which this variant never "
                                        r"uses"):
        make_compressor("matryoshka-adaptor-unsup:supervised_steps=50:lr_grid=0.5", 4)
    assert make_compressor("matryoshka-adaptor", 4).config()["supervised_steps"] == 300


@pytest.mark.parametrize("option", ["query_batch=1", "negatives_per_positive=99",
                                    "hard_fraction=0", "mine_every=none", "grid_min=0",
                                    "min_gain_z=5", "select=false", "basis=select"])
def test_unsupervised_matryoshka_refuses_what_only_labels_act_on(option: str) -> None:
    """Taken and recorded with no effect on the fit (basis=select fitted identity)."""
    name = option.split("=")[0] if option != "basis=select" else option
    with pytest.raises(DiveError, match=rf"^matryoshka-adaptor-unsup: {name} acts on labelled"):
        make_compressor(f"matryoshka-adaptor-unsup:{option}", 4)
    make_compressor(f"matryoshka-adaptor:{option}", 4)  # the supervised variant uses it
    if option != "basis=select":  # in a whole config too (it was taken, and recorded)
        built = make_compressor(f"matryoshka-adaptor:{option}", 4).options
        with pytest.raises(DiveError, match=rf"^matryoshka-adaptor-unsup: {name} acts on"):
            MatryoshkaAdaptorUnsup(4, config=built)
    default = make_compressor("matryoshka-adaptor-unsup:basis=pca:select=true", 4)  # as given
    assert default.config()["basis"] == "pca"
    with pytest.warns(FutureWarning):  # the old name sizes the corpus batch it uses too
        old = make_compressor("matryoshka-adaptor-unsup:batch_size=64", 4)
    assert old.options.corpus_batch == 64


METHODS_DOC = Path(__file__).resolve().parents[2] / "docs" / "methods.md"
DOCUMENTED_CONFIGS = {"DiveConfig": (DiveConfig, "dive"), "MatryoshkaConfig": (
    MatryoshkaConfig, "matryoshka-adaptor"), "SearchAdaptorConfig": (SearchAdaptorConfig,
    "search-adaptor"), "SMECConfig": (SMECConfig, "smec")}


def documented_defaults() -> dict[str, dict[str, Any]]:
    """Each `**Defaults** (`Config`, ...): `name=value`, ...` paragraph of docs/methods.md,
    its values parsed as a method spec parses them (`None`: unset)."""
    found: dict[str, dict[str, Any]] = {}
    text = METHODS_DOC.read_text(encoding="utf-8")
    for match in re.finditer(r"^\*\*Defaults\*\* \(`(\w+)`(.*?)\n\n", text, re.M | re.S):
        name, body = match.groups()
        assert name not in found, f"docs/methods.md: two Defaults paragraphs for {name}"
        method = DOCUMENTED_CONFIGS[name][1]
        pairs = re.findall(r"`(\w+)=([^`]*)`", body)
        options = parse_spec(method + "".join(f":{k}={v}" for k, v in pairs))[1]
        assert len(options) == len(pairs), f"{name}: an option is listed twice"
        found[name] = {k: None if v == "None" else v for k, v in options.items()}
    return found


@pytest.mark.parametrize("name", sorted(DOCUMENTED_CONFIGS))
def test_the_docs_state_every_default_the_config_holds(name: str) -> None:
    cls = DOCUMENTED_CONFIGS[name][0]
    held = {f.name: f.default for f in dataclasses.fields(cls)}
    assert documented_defaults().get(name) == held


# The grids docs/methods.md names: Search-Adaptor's paper grid (alpha x beta); the paper-silent
# baselines get two learning rates, the size of DIVE's grid.
DOCUMENTED_GRIDS = {
    "search-adaptor": [
        {"lr": 0.001, "weight_rec": a, "weight_pred": b}
        for a in (0.0, 0.1, 1.0)
        for b in (0.0, 0.01, 0.1)
    ],
    "matryoshka-adaptor": [{"lr": 0.001}, {"lr": 0.0001}],
    "smec": [{"lr": 0.001}, {"lr": 0.0001}],
}


@pytest.mark.parametrize("method", sorted(DOCUMENTED_GRIDS))
def test_each_baseline_selects_over_the_grid_its_docs_name(method: str) -> None:
    model, fixed = make_compressor(method, 4), make_compressor(f"{method}:select=false", 4)
    assert isinstance(model, Baseline) and isinstance(fixed, Baseline)
    assert model.options.settings() == DOCUMENTED_GRIDS[method]
    # nothing to choose on, or told not to: the configured values alone
    configured = [{k: getattr(model.options, k) for k in DOCUMENTED_GRIDS[method][0]}]
    assert model.options.settings(validated=False) == configured
    assert fixed.options.settings() == configured


def test_the_grid_is_named_as_the_results_page_shows_it() -> None:
    assert SearchAdaptorConfig().grid_text() == "weight_rec 0/0.1/1 × weight_pred 0/0.01/0.1"
    assert SMECConfig(basis="select").grid_text() == "start identity/pca × lr 0.001/0.0001"
    assert SMECConfig(select=False).grid_text() == "none"
    assert make_compressor("matryoshka-adaptor-unsup", 4).config()["lr_grid"] == ""


@pytest.mark.parametrize(
    ("method", "options", "message"),
    [
        ("dive", {"select": "false"}, "select must be true or false, got 'false'"),
        ("dive", {"lr": float("inf")}, "lr must be a finite number, got inf"),
        ("dive", {"hidden": True}, "hidden must be an integer or none, got True"),
        ("dive", {"steps": 5.5}, "steps must be an integer, got 5.5"),
        ("dive", {"heads": 2.5}, "heads must be an integer, got 2.5"),
        ("dive", {"heads": "x"}, "heads must be an integer, got 'x'"),
        ("smec", {"stage_steps": 1.5}, "stage_steps must be an integer, got 1.5"),
        ("smec", {"tau": "warm"}, "tau must be a number, got 'warm'"),
    ],
)
def test_a_whole_config_is_checked_as_keyword_options_are(
    method: str, options: dict[str, Any], message: str
) -> None:
    """A config object built by hand gets the type checks keyword and spec options get
    (`select="false"` was recorded while the selection ran; a float `heads` failed in numpy)."""
    cls = REGISTRY[method]
    assert issubclass(cls, LearnedCompressor)
    with pytest.raises(DiveError, match=f"^{method}: {re.escape(message)}$"):
        cls(8, **options)
    with pytest.raises(DiveError, match=f"^{re.escape(message)}$"):
        cls.config_class(**options)


@pytest.mark.parametrize("config", [{"heads": 1}, SMECConfig(), "heads=1"])
def test_a_config_of_another_class_is_refused(config: Any) -> None:
    with pytest.raises(DiveError, match=r"^dive: config must be a DiveConfig, got "):
        Dive(8, config=config)


def test_numpy_scalars_are_taken_as_the_python_numbers_they_hold() -> None:
    model = Dive(8, lr=np.float32(0.5), steps=np.int64(5), threads=np.int32(2), select=np.bool_(0))
    assert model.options == DiveConfig(lr=0.5, steps=5, threads=2, select=False)
    assert [type(model.options.lr), type(model.options.steps)] == [float, int]
    json.dumps(model.config())  # plain Python values
    assert DiveConfig(margin=np.int64(1)).margin == 1.0
    with pytest.raises(DiveError, match=r"^lr must be a number, got np\.True_$"):
        DiveConfig(lr=np.bool_(True))


def test_a_bool_is_not_taken_as_a_number() -> None:
    """Guards the float options' type check: `lr=true` was taken as a learning rate of 1.0
    (a bool is an int to Python)."""
    with pytest.raises(DiveError, match=r"^search-adaptor: lr must be a number, got True$"):
        make_compressor("search-adaptor:lr=true", 8)
    with pytest.raises(DiveError, match=r"^dive: lr must be a number, got True$"):
        Dive(8, lr=True)


def test_a_model_too_large_for_memory_is_one_error() -> None:
    """hidden=100000000 passed the range check, then torch's allocator raised a 15-frame
    traceback (`[enforce fail at alloc_cpu.cpp] ... you tried to allocate 153600000000
    bytes`)."""
    from dive.errors import DataError

    corpus = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    with pytest.raises(DataError, match=r"^matryoshka-adaptor-unsup: out of memory while "
                                        r"fitting \(.*\); its layers \(hidden, heads\)"):
        make_compressor("matryoshka-adaptor-unsup:steps=1:hidden=2000000000", 4).fit(corpus)


@pytest.mark.parametrize(("raised", "said"), [
    (MemoryError(), "MemoryError"),  # an import under `ulimit -v`: no message
    (RuntimeError("std::bad_alloc"), "std::bad_alloc"),  # torch's C++ allocator
    (RuntimeError("can't start new thread"), "can't start new thread"),  # a worker's stack
])
def test_an_allocation_failure_of_any_wording_is_one_error(
    raised: BaseException, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A MemoryError without a message made the handler's own IndexError a traceback, and
    torch's `std::bad_alloc` or a worker thread without memory for its stack was not seen as
    memory at all (`ulimit -v`)."""
    from dive.compressors.pca import PCA
    from dive.errors import DataError

    def fail(*args: object) -> None:
        raise raised

    monkeypatch.setattr(PCA, "_fit", fail)
    corpus = np.random.default_rng(0).standard_normal((64, 32)).astype(np.float32)
    with pytest.raises(DataError, match=rf"^pca: out of memory while fitting \({said}\); "):
        PCA(dim=4).fit(corpus)


def test_dive_refuses_more_nt_xent_views_than_its_matrix_holds() -> None:
    """heads=1000 (x 64 items) asked NT-Xent for a 16 GB similarity matrix: the kernel killed
    the fit, without a word."""
    with pytest.raises(DiveError, match=r"^dive: heads must be such that heads x ntxent_items "
                                        r"<= 8192 .*, got 1000$"):
        make_compressor("dive:heads=1000", 8)
    # the rule's bound divided by ntxent_items=0 (a ZeroDivisionError traceback), and asked
    # for "heads <= 0" where ntxent_items alone is past it
    with pytest.raises(DiveError, match=r"^dive: ntxent_items must be >= 2, got 0$"):
        make_compressor("dive:ntxent_items=0", 8)
    with pytest.raises(DiveError, match=r"^dive: ntxent_items must be such that heads x "
                                        r"ntxent_items <= 8192 .*, got 10000$"):
        make_compressor("dive:ntxent_items=10000:corpus_batch=10000:heads=1", 8)
    assert make_compressor("dive:heads=128", 8).options.heads == 128
    assert make_compressor("dive:heads=1000:ntxent_weight=0", 8).options.heads == 1000


def test_every_registered_methods_class_is_exported() -> None:
    """docs/methods.md names `DivePlus` beside `Dive` and the baselines; it was the one class
    of a registered method that `dive.compressors` did not export."""
    import dive.compressors
    from dive.compressors.registry import REGISTRY

    for name, cls in REGISTRY.items():
        assert getattr(dive.compressors, cls.__name__, None) is cls, name
        assert cls.__name__ in dive.compressors.__all__, name
