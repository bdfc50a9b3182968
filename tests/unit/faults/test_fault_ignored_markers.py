"""Promise: a data.yaml uploaded in the wrong place never passes without a word.

The bucket notification (template.yaml: prefix `datasets/`, suffix `data.yaml`, case-sensitive on
AWS) delivers `datasets/<name>/data.yaml`, but also `datasets/a/b/data.yaml` (a folder too deep) and
`datasets/data.yaml` (no dataset folder). Those start nothing; the uploader hears, once per object
version, where the marker must be. `datasets/a/Data.YAML` is never delivered. Keys that are not a
data.yaml at all (images, labels, `mydata.yaml`) stay silent.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote_plus

import pytest
from function_harness import Aws, LambdaContext, load_event, load_handler, marker_event, template


def _filter_rules() -> dict[str, str]:
    """The trigger's S3 notification filter, as template.yaml declares it."""
    function = template()["Resources"]["TriggerFunction"]["Properties"]
    [event] = [e["Properties"] for e in function["Events"].values() if e["Type"] == "S3"]
    return {rule["Name"]: rule["Value"] for rule in event["Filter"]["S3Key"]["Rules"]}


def delivered(key: str) -> bool:
    """Whether S3 invokes the trigger for this key: its filter rules are plain, case-sensitive matches."""
    rules = _filter_rules()
    return key.startswith(rules.get("prefix", "")) and key.endswith(rules.get("suffix", ""))


def _put_and_deliver(aws: Aws, handler: Any, key: str, times: int = 1) -> list[dict[str, Any]]:
    version = aws.put(key, "names: [a]\n")
    event = marker_event("s3_marker_put", key=quote_plus(key, safe="/"), version=version)
    return [handler.lambda_handler(event, LambdaContext()) for _ in range(times)]


MISPLACED = [
    "datasets/shapes/sub/data.yaml",   # one folder too deep
    "datasets/a/b/c/data.yaml",        # several
    "datasets/data.yaml",              # no dataset folder
    "datasets/my shapes/v2/data.yaml",  # URL-encoded in the event
]


@pytest.mark.parametrize("key", MISPLACED)
def test_misplaced_marker_is_answered_once_per_version(aws: Aws, key: str) -> None:
    # GIVEN a data.yaml that S3's filter delivers but that is not datasets/<name>/data.yaml
    assert delivered(key)
    trigger = load_handler("trigger")
    # WHEN its event arrives, and S3 delivers it twice more
    results = _put_and_deliver(aws, trigger, key, times=3)
    # THEN nothing starts, every invocation succeeds, and the topic carries exactly one notice that
    # names the object and says where the marker must be
    assert aws.executions() == []
    assert all(r["outcomes"][0]["outcome"] == "ignored" for r in results)
    [notice] = aws.inbox()
    assert "ignored" in notice["subject"]
    assert len(notice["message"].splitlines()) == 1, notice["message"]
    assert key in notice["message"] and "datasets/<name>/data.yaml" in notice["message"]
    assert "written last" in notice["message"]


def test_a_new_version_of_a_misplaced_marker_is_answered_again(aws: Aws) -> None:
    # GIVEN a misplaced data.yaml already answered
    trigger = load_handler("trigger")
    _put_and_deliver(aws, trigger, "datasets/shapes/sub/data.yaml")
    assert len(aws.inbox()) == 1
    # WHEN the user uploads it again (a new object version) to the same wrong place
    _put_and_deliver(aws, trigger, "datasets/shapes/sub/data.yaml")
    # THEN they hear it again
    assert len(aws.inbox()) == 1


def test_a_fresh_runtime_does_not_repeat_the_notice(aws: Aws) -> None:
    # GIVEN a misplaced data.yaml answered by one Lambda runtime
    key = "datasets/data.yaml"
    version = aws.put(key, "names: [a]\n")
    event = marker_event("s3_marker_put", key=key, version=version)
    load_handler("trigger").lambda_handler(event, LambdaContext())
    # WHEN S3 redelivers the event to another runtime (no memory of the first)
    load_handler("trigger").lambda_handler(event, LambdaContext())
    # THEN one notice in all
    assert len(aws.inbox()) == 1


@pytest.mark.parametrize("key", ["datasets/shapes/Data.YAML", "datasets/shapes/DATA.yaml"])
def test_other_letter_case_is_not_delivered_but_answered_if_it_were(aws: Aws, key: str) -> None:
    # GIVEN a data.yaml in another letter case: S3's case-sensitive suffix filter drops it on AWS
    assert not delivered(key)
    # WHEN an event for it reaches the trigger anyway (another filter, a replay)
    _put_and_deliver(aws, load_handler("trigger"), key)
    # THEN nothing starts and the notice says the name must be lower case
    assert aws.executions() == []
    [notice] = aws.inbox()
    assert "lower case" in notice["message"] and key in notice["message"]


@pytest.mark.parametrize("key", [
    "datasets/shapes/mydata.yaml",              # delivered (suffix), but not a data.yaml
    "datasets/shapes/labels/train/data.txt",
])
def test_files_that_are_not_a_data_yaml_stay_silent(aws: Aws, key: str) -> None:
    # GIVEN an object that is not a data.yaml WHEN its event arrives THEN nothing starts, nothing is sent
    result = _put_and_deliver(aws, load_handler("trigger"), key)[0]
    assert result["outcomes"][0]["outcome"] == "ignored"
    assert aws.executions() == [] and aws.inbox() == []


def test_image_event_stays_silent(aws: Aws) -> None:
    # GIVEN the events/ image put WHEN it arrives THEN no notice
    load_handler("trigger").lambda_handler(load_event("s3_image_put"), LambdaContext())
    assert aws.inbox() == []


def test_misplaced_marker_beside_a_real_one(aws: Aws, sample_dataset: Any) -> None:
    # GIVEN one event with a dataset's real marker and a misplaced data.yaml
    ds = sample_dataset("shapes")
    version = aws.upload_dataset(ds.root, "shapes")
    stray = aws.put("datasets/shapes/old/data.yaml", "names: [a]\n")
    event = load_event("s3_marker_put")
    first = event["Records"][0]
    first["s3"]["object"]["versionId"] = version
    second = {**first, "s3": {**first["s3"], "object": {**first["s3"]["object"],
                                                         "key": "datasets/shapes/old/data.yaml", "versionId": stray}}}
    event["Records"].append(second)
    # WHEN it arrives
    result = load_handler("trigger").lambda_handler(event, LambdaContext())
    # THEN the dataset starts once and the stray marker gets its notice
    assert [o["outcome"] for o in result["outcomes"]] == ["started", "ignored"]
    assert len(aws.executions()) == 1
    [notice] = aws.inbox()
    assert "datasets/shapes/old/data.yaml" in notice["message"]
