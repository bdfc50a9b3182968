"""Which account's registry serves the Deep Learning Containers in a region.

763104351884 in most regions, another account in each opt-in region (af-south-1: 626614931356,
il-central-1: 780543022126...). The build writes the table of the images the definition uses from
the SageMaker SDK's image_uri_config (`python -m pipeline.render --image-accounts`); here the
deploy function looks up the region it deploys to, or takes the stack's explicit account.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import botocore.session
from botocore.exceptions import UnknownRegionError

from yolopipe_shared.errors import YolopipeError

#: The stack parameter (and custom resource property) that names the account explicitly.
ACCOUNT_PARAMETER = "ContainerImageAccountId"
#: Partitions whose registries are `<account>.dkr.ecr.<region>.amazonaws.com`, as the definition's
#: image URIs say. China (aws-cn) serves them under amazonaws.com.cn, the ISO partitions elsewhere.
SUPPORTED_PARTITIONS = ("aws", "aws-us-gov")
_ACCOUNT = re.compile(r"[0-9]{12}")


class ImageAccountError(YolopipeError):
    """No image account for the region: an unsupported partition, or a region the build does not know."""


@functools.cache
def partition_of(region: str) -> str | None:
    """`aws`, `aws-cn`, `aws-us-gov`... by botocore's endpoint data; None for a region it does not know."""
    try:
        return str(botocore.session.get_session().get_partition_for_region(region))
    except UnknownRegionError:
        return None


@dataclass(frozen=True)
class ImageAccounts:
    """The build's region -> account table (`image_accounts.json` beside the definition)."""

    accounts: Mapping[str, str]
    source: str = "unknown source"
    images: tuple[str, ...] = field(default=())

    @classmethod
    def from_json(cls, text: str) -> ImageAccounts:
        document = json.loads(text)
        accounts = document.get("accounts") if isinstance(document, dict) else None
        if not isinstance(accounts, dict) or not accounts:
            raise ImageAccountError("image_accounts.json has no accounts table; rebuild with `sam build`")
        return cls(
            accounts={str(region): str(account) for region, account in accounts.items()},
            source=str(document.get("source") or "unknown source"),
            images=tuple(str(image) for image in document.get("images") or ()),
        )

    def account_for(self, region: str, explicit: str = "") -> str:
        """The registry account for `region`: `explicit` when given, else the table's.

        Raises ImageAccountError, one line naming the region and what to do, for a partition whose
        registries are not under amazonaws.com, a malformed explicit account, or a region the
        table does not list.
        """
        partition = partition_of(region)
        if partition is not None and partition not in SUPPORTED_PARTITIONS:
            raise ImageAccountError(
                f"region {region} is in the {partition} partition, whose container registries are not under "
                f"amazonaws.com; yolopipe's image URIs support the {' and '.join(SUPPORTED_PARTITIONS)} "
                "partitions only: deploy the stack in one of their regions"
            )
        explicit = explicit.strip()
        if explicit:
            if not _ACCOUNT.fullmatch(explicit):
                raise ImageAccountError(f"{ACCOUNT_PARAMETER} must be a 12-digit AWS account id, got {explicit!r}")
            return explicit
        if region not in self.accounts:
            raise ImageAccountError(
                f"no Deep Learning Containers account is known for region {region} (the build's table, from "
                f"{self.source}, lists {len(self.accounts)} regions): set the stack parameter {ACCOUNT_PARAMETER} "
                f"to the account of the DLC registry in {region}, or rebuild with a newer SageMaker SDK"
            )
        return self.accounts[region]
