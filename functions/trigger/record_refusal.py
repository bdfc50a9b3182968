"""A refusal, recorded where the CLI reads it and announced where the notifier hears it.

`refusals/<name>/<version>.json` in the stack's bucket (outside `datasets/`: it triggers nothing),
then a "Dataset Refused" event on the default bus, which template.yaml's rule routes to the notifier
(Slack). The trigger never holds the Slack secret. Both are safe to repeat: the record is the same
object again, and the notifier posts once per record key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from s3_events import DatasetMarker

from yolopipe_shared.errors import YolopipeError
from yolopipe_shared.refusal import Refusal


class RefusalNotAnnounced(YolopipeError):
    """EventBridge did not accept the refusal's event; raised so that Lambda retries the invocation."""


def record_refusal(s3: Any, events: Any, marker: DatasetMarker, problems: list[Any], *,
                   now: datetime | None = None) -> Refusal:
    """Write the refusal record, then put its event; return the record."""
    refusal = Refusal.of(bucket=marker.bucket, dataset=marker.dataset, version=marker.version,
                         marker_uri=marker.marker_uri,
                         refused_at=(now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"), problems=problems)
    s3.put_object(Bucket=marker.bucket, Key=refusal.key, Body=refusal.to_json(), ContentType="application/json")
    answer = events.put_events(Entries=[refusal.event_entry()])
    if answer.get("FailedEntryCount"):
        failed = (answer.get("Entries") or [{}])[0]
        raise RefusalNotAnnounced(f"EventBridge refused the refusal event of {marker.dataset!r}: "
                                  f"{failed.get('ErrorCode', '?')} {failed.get('ErrorMessage', '')}".rstrip())
    return refusal
