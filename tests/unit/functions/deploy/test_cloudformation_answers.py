"""CloudFormation hears exactly one answer to every request, on time and within its size limit, even
when the response URL fails for a while, the function runs out of time or something calls exit."""

from __future__ import annotations

import json
import threading
import time

import pytest
from deploy_harness import PIPELINE, Context


def test_answers_failed_once_before_the_lambda_times_out(function, deploy, aws, cloudformation, properties):
    """GIVEN SageMaker hangs WHEN the Lambda nears its deadline THEN CloudFormation already has a FAILED
    answer saying the function ran out of time (not an hour-long wait), and when SageMaker finally
    answers the late result is not sent as a second answer."""
    release = threading.Event()
    function.sagemaker.meta.events.register("before-call.sagemaker.DescribePipeline",
                                            lambda **kwargs: release.wait(timeout=20))
    # 15.5 s left and a 15 s safety margin: the answer must come after about 0.5 s.
    event = cloudformation.event("Create", properties)
    returned = {}
    worker = threading.Thread(target=lambda: returned.update(deploy(event, context=Context(remaining_ms=15_500))),
                              daemon=True)
    started = time.monotonic()
    worker.start()

    assert cloudformation.arrived.wait(timeout=5)
    assert time.monotonic() - started < 3
    [answer] = cloudformation.answers
    assert answer["Status"] == "FAILED" and "ran out of time" in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("Pipeline-not-created-")
    release.set()
    worker.join(timeout=20)
    assert not worker.is_alive()
    assert len(cloudformation.answers) == 1 and cloudformation.puts == 1
    assert returned["Status"] == "FAILED"


def test_an_exit_inside_the_function_answers_failed_once(function, deploy, cloudformation, properties):
    """GIVEN something inside the function calls sys.exit WHEN CloudFormation creates the resource THEN it
    hears FAILED naming the exit, once, and the invocation ends normally (a raising asynchronous
    invocation would be retried by Lambda and deploy behind the rollback's back)."""

    def exits(**kwargs):
        raise SystemExit(3)

    function.sagemaker.meta.events.register("before-call.sagemaker.CreatePipeline", exits)
    body = deploy(cloudformation.event("Create", properties))

    [answer] = cloudformation.answers
    assert answer["Status"] == "FAILED" and answer["Reason"] == "SystemExit: 3"
    assert body == answer


def test_the_answer_is_retried_while_the_response_url_fails(deploy, aws, cloudformation, properties):
    """GIVEN the pre-signed response URL answers 500 twice WHEN the function answers THEN it tries again
    with backoff and CloudFormation gets the SUCCESS answer on the third PUT."""
    cloudformation.fail_next = 2
    started = time.monotonic()
    deploy(cloudformation.event("Create", properties))

    assert cloudformation.puts == 3
    [answer] = cloudformation.answers
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == PIPELINE
    assert 1.4 < time.monotonic() - started < 20  # 0.5 s then 1 s of backoff


def test_the_answer_is_retried_while_connections_are_refused(deploy, aws, cloudformation, properties):
    """GIVEN nothing accepts connections at the response URL for a second WHEN the function answers THEN
    it keeps trying and CloudFormation gets the answer once the URL takes it again."""
    cloudformation.down_for(1.2)
    deploy(cloudformation.event("Create", properties))

    [answer] = cloudformation.answers
    assert answer["Status"] == "SUCCESS", answer["Reason"]


def test_an_expired_response_url_is_not_retried(deploy, aws, cloudformation, properties):
    """GIVEN the response URL refuses the answer with 403 (an expired or altered signature) WHEN the
    function answers THEN it does not retry what cannot succeed, and still returns its answer."""
    cloudformation.fail_next, cloudformation.fail_status = 5, 403
    started = time.monotonic()
    body = deploy(cloudformation.event("Create", properties))
    assert cloudformation.puts == 1 and time.monotonic() - started < 10
    assert body["Status"] == "SUCCESS"


@pytest.mark.parametrize("text", ["ünïcødé ", "数据集 ", "🚀 "])
def test_a_long_unicode_reason_fits_the_4096_byte_limit(deploy, cloudformation, properties, text):
    """GIVEN a failure whose reason is 10 KB of non-ASCII text (a bad property value quoted back) WHEN the
    function answers THEN the encoded body CloudFormation receives is at most 4,096 bytes, the reason
    starts with what went wrong and says it was cut."""
    role = (text * (10_240 // len(text.encode())))
    assert len(role.encode()) > 10_000
    deploy(cloudformation.event("Create", properties | {"RoleArn": role}))

    [raw] = cloudformation.raw
    assert len(raw) <= 4096
    answer = json.loads(raw)
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith("RoleArn must be an IAM role ARN, got '" + text.strip())
    assert answer["Reason"].endswith("[...]")
    assert len(raw) > 4000  # cut to fit, not cut short
