"""The local stack comes from template.yaml; notifications render as a person reads them."""

from __future__ import annotations

from pathlib import Path

from yolopipe.local import sinks
from yolopipe.local.events import s3_marker_event
from yolopipe.local.stack import LocalStack, function_spec, load_template, table_key

STACK = LocalStack(bucket="bkt", pipeline_name="yolopipe-local", table="tbl", topic_arn="arn:topic",
                   secret_arn="arn:secret", email_queue_url="http://q", model_package_group="grp",
                   region="us-east-1")


def test_functions_get_the_environment_template_yaml_declares() -> None:
    # GIVEN the repository's template.yaml
    template = load_template()
    STACK.template = template
    # WHEN the trigger's and the notifier's environments are built for the emulator
    trigger = function_spec(template, "TriggerFunction", "functions/trigger")
    notifier = function_spec(template, "NotifierFunction", "functions/notifier")
    trigger_env, notifier_env = STACK.environment(trigger), STACK.environment(notifier)
    # THEN every variable the template sets is there, resolved to the emulator's resources
    assert set(trigger.environment) <= set(trigger_env)
    assert set(notifier.environment) <= set(notifier_env)
    assert trigger_env["PIPELINE_NAME"] == "yolopipe-local"
    assert trigger_env["IDEMPOTENCY_TABLE"] == notifier_env["IDEMPOTENCY_TABLE"] == "tbl"
    assert trigger_env["NOTIFY_TOPIC_ARN"] == "arn:topic"
    assert notifier_env["SLACK_SECRET_ARN"] == "arn:secret"
    # and the code is the function's own folder, as `sam build` packages it
    assert trigger.module_path == Path(__file__).resolve().parents[3] / "functions" / "trigger" / "app.py"
    assert trigger.module_path.is_file() and notifier.module_path.is_file()
    # and the table's key is the template's
    assert table_key(template) == ("id", "expiration")


def test_marker_event_has_s3s_shape_with_an_encoded_key() -> None:
    # GIVEN a marker under a dataset name with a space  (moto's S3 in-process)
    import boto3
    from moto import mock_aws

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="bkt")
        s3.put_bucket_versioning(Bucket="bkt", VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket="bkt", Key="datasets/my shapes/data.yaml", Body=b"names: [a]\n")
        # WHEN the event S3 would send is built
        event = s3_marker_event(s3, "bkt", "datasets/my shapes/data.yaml", "us-east-1")
    # THEN the key is URL-encoded and the version and eTag identify this upload
    record = event["Records"][0]
    assert record["eventName"] == "ObjectCreated:Put" and record["eventSource"] == "aws:s3"
    assert record["s3"]["object"]["key"] == "datasets/my+shapes/data.yaml"
    assert record["s3"]["object"]["versionId"] and len(record["s3"]["object"]["eTag"]) == 32
    assert record["s3"]["bucket"]["arn"] == "arn:aws:s3:::bkt"


def test_slack_blocks_render_as_the_channel_shows_them() -> None:
    # GIVEN a Block Kit message as the notifier sends it
    message = {"text": "fallback", "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "✅ Training succeeded: shapes"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Status*\nSucceeded"},
                                       {"type": "mrkdwn", "text": "*mAP50-95*\n0.412"}]},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Failed* in step *Train*\n```a &lt; b```"}},
        {"type": "actions", "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open"},
                                          "url": "https://console"}]},
    ]}
    # WHEN rendered  THEN the lines are what a person reads
    assert sinks.render(message).splitlines() == [
        "✅ Training succeeded: shapes", "Status: Succeeded", "mAP50-95: 0.412", "*Failed* in step *Train*",
        "a < b", "[Open] https://console"]
    # and a message without blocks shows its text
    assert sinks.render({"text": "plain <https://x|link>"}) == "plain link (https://x)"


def test_slack_receiver_answers_like_slack_and_keeps_messages() -> None:
    # GIVEN the local receiver  WHEN a message and a malformed body are posted
    import urllib.error
    import urllib.request

    receiver = sinks.SlackReceiver().start()
    try:
        ok = urllib.request.urlopen(urllib.request.Request(  # noqa: S310 (127.0.0.1)
            receiver.url, data=b'{"text": "hello"}', headers={"Content-Type": "application/json"}), timeout=5)
        assert ok.status == 200 and ok.read() == b"ok"
        try:
            urllib.request.urlopen(urllib.request.Request(receiver.url, data=b"{nope"), timeout=5)  # noqa: S310
            raise AssertionError("a malformed body must be refused")
        except urllib.error.HTTPError as error:
            assert error.code == 400
        # THEN only the valid message is kept
        assert receiver.take() == [{"text": "hello"}]
        assert receiver.take() == []
    finally:
        receiver.stop()


def test_a_function_that_raises_is_reported_in_one_line() -> None:
    # GIVEN the trigger deployed without its PIPELINE_NAME (a deployment mistake)
    import os

    from yolopipe.local.lambdas import InvocationFailed, invoke

    template = load_template()
    trigger = function_spec(template, "TriggerFunction", "functions/trigger")
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "IDEMPOTENCY_TABLE": "t", "NOTIFY_TOPIC_ARN": "arn:t"})
    # WHEN it is invoked as Lambda would  THEN the error is the function's own one-line message
    try:
        invoke(trigger, {"Records": []}, env)
        raise AssertionError("the invocation should fail")
    except InvocationFailed as error:
        assert str(error).startswith("TriggerFunction failed: ConfigurationError: environment variable PIPELINE_NAME")
