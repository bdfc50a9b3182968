"""Retry policies in the rendered definition: what SageMaker retries, and for how long, when a job
step's CreateTrainingJob / CreateProcessingJob is refused."""

from __future__ import annotations

from typing import Any

#: How long a quota refusal may keep an execution waiting before the step fails and the team is told.
QUOTA_WAIT_LIMIT_S = 30 * 60


def policies_for(step: dict[str, Any], exception_type: str) -> list[dict[str, Any]]:
    return [p for p in step.get("RetryPolicies", []) if exception_type in p["ExceptionType"]]


def longest_wait_s(policy: dict[str, Any]) -> float:
    """The time SageMaker spends waiting between attempts before giving up (IntervalSeconds grows
    by BackoffRate after each retry; MaxAttempts counts the retries)."""
    assert "ExpireAfterMin" not in policy, "bounded by attempts, not by a time that keeps retrying"
    return sum(policy["IntervalSeconds"] * policy["BackoffRate"] ** n for n in range(policy["MaxAttempts"]))


def test_a_quota_refusal_fails_the_step_within_half_an_hour(steps: dict[str, dict[str, Any]]) -> None:
    """GIVEN an account whose quota for the job's instance type is 0 (ResourceLimitExceeded: the quota
    does not rise by itself) WHEN Train or Evaluate is refused THEN SageMaker retries at most twice,
    within 30 minutes, and the step fails (so the notifier can say which quota to raise) instead of
    leaving the execution "Executing" for hours."""
    for name in ("Train", "Evaluate"):
        [policy] = policies_for(steps[name], "SageMaker.RESOURCE_LIMIT")
        assert 1 <= policy["MaxAttempts"] <= 2
        assert longest_wait_s(policy) <= QUOTA_WAIT_LIMIT_S


def test_capacity_errors_still_wait_for_capacity(steps: dict[str, dict[str, Any]]) -> None:
    """GIVEN spot or GPU capacity runs out (it comes back by itself) WHEN a job step is refused THEN
    SageMaker keeps retrying it for hours, under a policy apart from the quota's."""
    for name in ("Train", "Evaluate"):
        [policy] = policies_for(steps[name], "SageMaker.CAPACITY_ERROR")
        assert "SageMaker.RESOURCE_LIMIT" not in policy["ExceptionType"]
        assert policy.get("ExpireAfterMin", 0) >= 60 or policy.get("MaxAttempts", 0) >= 5


def test_each_exception_type_has_one_policy(steps: dict[str, dict[str, Any]]) -> None:
    """GIVEN a step's retry policies WHEN SageMaker matches an exception THEN exactly one policy applies."""
    for step in steps.values():
        kinds = [kind for policy in step.get("RetryPolicies", []) for kind in policy["ExceptionType"]]
        assert len(kinds) == len(set(kinds)), step["Name"]
