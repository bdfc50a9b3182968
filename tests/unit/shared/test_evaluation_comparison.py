"""evaluation.json's comparison with the approved model: the verdict people read, the number the gate compares."""

from __future__ import annotations

from yolopipe_shared.evaluation import NO_BASELINE_IMPROVEMENT, compare_with_baseline, metadata_safe, verdict

APPROVED_V3 = {"model_package_arn": "arn:aws:sagemaker:us-east-1:1:model-package/g/3", "version": 3,
               "metrics": {"map50_95": 0.587}}


def test_a_better_candidate_is_registered_and_says_by_how_much() -> None:
    # GIVEN approved v3 at 0.587 WHEN the candidate scores 0.612
    comparison = compare_with_baseline(0.612, APPROVED_V3, min_map50_95=0.5, min_improvement=0.0)
    # THEN the gain is the difference and the verdict says it is registered
    assert comparison["improvement"] == 0.025
    assert comparison["verdict"] == "0.612 vs approved v3 0.587: +0.025, registered"
    assert comparison["summary"] == "vs v3: +0.025"


def test_a_worse_candidate_is_not_registered() -> None:
    comparison = compare_with_baseline(0.571, APPROVED_V3, min_map50_95=0.5, min_improvement=0.0)
    assert comparison["improvement"] == -0.016
    assert comparison["verdict"] == "0.571 < approved v3 0.587: -0.016, not registered"


def test_the_first_model_has_nothing_to_beat() -> None:
    comparison = compare_with_baseline(0.3, None, min_map50_95=0.2, min_improvement=0.5)
    assert comparison["improvement"] == NO_BASELINE_IMPROVEMENT
    assert comparison["verdict"] == "first model: no approved baseline, registered"


def test_an_unreadable_baseline_leaves_the_fixed_gate_alone_and_says_why() -> None:
    comparison = compare_with_baseline(0.41, None, baseline_error="AccessDenied", min_map50_95=0.5, min_improvement=0.0)
    assert comparison["improvement"] == NO_BASELINE_IMPROVEMENT
    assert comparison["verdict"] == "0.410 < MinMap50_95 0.5: not registered"
    assert comparison["baseline_error"] == "AccessDenied"
    passed = compare_with_baseline(0.61, None, baseline_error="NoSuchKey", min_map50_95=0.5, min_improvement=0.0)
    assert passed["verdict"] == "approved baseline unreadable (NoSuchKey): fixed gate only, registered"


def test_old_documents_have_no_verdict_and_odd_text_is_made_metadata_safe() -> None:
    assert verdict({"metrics": {"map50_95": 0.5}}) is None
    assert verdict({"comparison": "x"}) is None
    assert metadata_safe("vs v3 (+0.025), ok & more") == "vs v3 +0.025 ok more"
