"""Ultralytics' settings by their own names, checked in the layer (no torch) as Ultralytics checks them."""

from __future__ import annotations

import json

import pytest

from yolopipe_shared import parameters, ultralytics_settings
from yolopipe_shared.errors import ParameterError
from yolopipe_shared.overrides import StackLimits, parse_overrides


def test_the_catalogue_is_in_step_with_the_pinned_ultralytics() -> None:
    # GIVEN the installed Ultralytics WHEN the catalogue is generated again from its default.yaml and type lists
    from pipeline.generate_ultralytics_settings import TARGET, build, render

    # THEN it is byte for byte the file the layer ships (regenerate: python -m pipeline.generate_ultralytics_settings)
    assert TARGET.read_text() == render(build()), "run `python -m pipeline.generate_ultralytics_settings`"
    from importlib.metadata import version

    assert ultralytics_settings.pinned_version() == version("ultralytics")
    requirements = (TARGET.parents[3] / "training_code" / "requirements.txt").read_text()
    assert f"ultralytics=={ultralytics_settings.pinned_version()}" in requirements, "the job runs the same pin"


def test_the_layer_accepts_and_refuses_what_ultralytics_check_cfg_does() -> None:
    # GIVEN every typed setting and values of each type
    from ultralytics.cfg import check_cfg

    samples = [0, 1, 0.5, 7, 2.5, -1, True, "text", [0, 1]]
    for key, entry in ultralytics_settings.catalogue().items():
        if entry["type"] not in ("float", "fraction", "int", "bool", "str") or key in ultralytics_settings.RESERVED \
                or key in ultralytics_settings.PARAMETER_NAMES or key == "fraction":
            continue
        for value in samples:
            # WHEN both check it
            try:
                ours = ultralytics_settings.check_setting(key, value)
            except ParameterError:
                ours = "refused"
            theirs: object
            try:
                cfg = {key: value}
                check_cfg(cfg)
                theirs = cfg[key]
            except (TypeError, ValueError):
                theirs = "refused"
            # THEN they agree, except that true/false is no number here (YAML's `yes`/`on` would become 1.0)
            if isinstance(value, bool) and entry["type"] in ("float", "fraction", "int"):
                assert ours == "refused", (key, value)
                continue
            assert (ours == "refused") == (theirs == "refused"), (key, value, ours, theirs)


def test_settings_by_their_own_names_in_yolopipe_yaml_become_one_json_parameter() -> None:
    # GIVEN a yolopipe.yaml mixing pipeline parameters (some under Ultralytics' names) and Ultralytics settings
    text = "epochs: 50\nimgsz: 320\npatience: 20\noptimizer: AdamW\nmosaic: 0.5\nweights: scratch\n"
    # WHEN the trigger parses it
    values, problems = parse_overrides(text, StackLimits(max_epochs=100))
    # THEN the parameters are parameters and the settings are one compact, sorted JSON object
    assert problems == []
    assert values["Epochs"] == 50 and values["ImageSize"] == 320 and values["Weights"] == "scratch"
    assert values["UltralyticsSettings"] == '{"mosaic":0.5,"optimizer":"AdamW","patience":20}'


def test_yolopipe_yaml_refusals_name_the_line_and_say_what_to_do() -> None:
    text = "patiense: 20\ndevice: 0\ntime: 2\noptimizer: auto\nlr0: 0.05\nepochs: 500\n"
    _, problems = parse_overrides(text, StackLimits(max_epochs=100))
    said = [str(p) for p in problems]
    assert any("yolopipe.yaml:1" in p and "did you mean 'patience'?" in p for p in said), said
    assert any("yolopipe.yaml:2" in p and "the training instance decides" in p for p in said), said
    assert any("yolopipe.yaml:3" in p and "would override Epochs and the stack's MaxEpochs" in p for p in said), said
    assert any("yolopipe.yaml:6" in p and "MaxEpochs" in p for p in said), said
    assert any("optimizer=auto ignores lr0" in p for p in said), said


def test_the_settings_json_fits_a_pipeline_parameter_value() -> None:
    # GIVEN botocore's limit on a pipeline parameter's value (StartPipelineExecution: Parameter.Value)
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    limit = model.shape_for("Parameter").members["Value"].metadata["max"]
    assert limit == ultralytics_settings.MAX_JSON_CHARS
    # WHEN settings would need more THEN they are refused before anything starts, in one line
    many = {key: "x" * 80 for key, e in ultralytics_settings.catalogue().items() if e["type"] in ("any", "str")
            and key not in ultralytics_settings.RESERVED and key not in ultralytics_settings.PARAMETER_NAMES}
    with pytest.raises(ParameterError, match="holds at most 1024"):
        parameters.resolve(many)
    # AND the JSON parameter itself cannot smuggle a pipeline parameter past its bounds
    with pytest.raises(ParameterError, match="'epochs' is a pipeline parameter"):
        parameters.resolve({"UltralyticsSettings": json.dumps({"epochs": 5000})})
