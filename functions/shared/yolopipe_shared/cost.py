"""What a run cost: per job, instance type x count, seconds, billable seconds, the managed-spot
saving and an estimated USD figure; read by the notifier and the CLI (`yolopipe report/compare`).

    estimate = billable hours x instance count x on-demand USD per hour

Billable seconds: DescribeTrainingJob's `BillableTimeInSeconds` (with managed spot, SageMaker bills
that many seconds, and its console's saving is `1 - BillableTimeInSeconds / TrainingTimeInSeconds`);
a processing job is billed from `ProcessingStartTime` to `ProcessingEndTime`. A step reused from
SageMaker's step cache ran no job: it costs 0 and names the execution it came from.

Prices come from the AWS Price List API (`pricing:GetProducts`, service code AmazonSageMaker; the
API is served from us-east-1), one product per (instance type, region, job kind), cached for the
process's lifetime. When the API cannot be reached or answers nothing, LIST_PRICES (dated, below)
is used and the line says so; an instance type in neither is "price unknown". Pricing never raises.

Not counted: S3, CloudWatch, data transfer, ECR, the Lambda functions, KMS, the jobs' storage
volumes, Savings Plans or credits. This is an estimate, not a bill.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

logger = logging.getLogger(__name__)

#: The Price List API's endpoints are us-east-1, eu-central-1 and ap-south-1 only.
PRICING_REGION = "us-east-1"
SERVICE_CODE = "AmazonSageMaker"
PRODUCT_FAMILY = "ML Instance"
TRAINING = "training"
PROCESSING = "processing"
#: A SageMaker product's `platoinstancetype` attribute, and the component of its `usagetype`
#: (`USE1-Train:ml.g4dn.xlarge`, `USE1-Processing:ml.m5.large`; spot training is `TrSpt`, not wanted:
#: SageMaker reports spot savings as fewer billable seconds at the on-demand rate).
PLATO_INSTANCE_TYPES = {TRAINING: "Training", PROCESSING: "Processing"}
USAGE_COMPONENTS = {TRAINING: "Train", PROCESSING: "Processing"}
API_SOURCE = "AWS Price List API"

#: On-demand USD per instance-hour in us-east-1 for the instance types yolopipe offers, used when
#: the Price List API cannot be reached or answers nothing. APPROXIMATE, gathered in September 2026
#: from published copies of AWS's SageMaker price list (usage types USE1-Train:<type> and
#: USE1-Processing:<type>, the same figure for both where both were found; the bulk price file of
#: 2026-09-24 for g4dn/g5/g6/m5 .xlarge) and checked against the public page
#: https://aws.amazon.com/sagemaker/pricing/ only where it agreed; refresh with
#: `aws pricing get-products --region us-east-1 --service-code AmazonSageMaker --filters
#: Type=TERM_MATCH,Field=usagetype,Value=USE1-Train:ml.g4dn.xlarge`.
LIST_PRICES_DATE = "2026-09"
LIST_PRICES_REGION = "us-east-1"
LIST_PRICES: dict[str, float] = {
    "ml.g4dn.xlarge": 0.736,
    "ml.g4dn.2xlarge": 0.94,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.g6.xlarge": 1.127,
    "ml.g6.2xlarge": 1.222,
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
}


def pricing_config() -> Any:
    """Short timeouts and two attempts: a price is worth a second or two, never a notice's deadline."""
    from botocore.config import Config

    return Config(region_name=PRICING_REGION, connect_timeout=2, read_timeout=4,
                  retries={"mode": "standard", "max_attempts": 2})


def pricing_client(session: Any) -> Any:
    """The Price List API client from a boto3 session (its credentials), in PRICING_REGION."""
    return session.client("pricing", region_name=PRICING_REGION, config=pricing_config())


# --- prices ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Price:
    usd_per_hour: float
    source: str  # API_SOURCE, or "list price table of <date>"


def list_price_source(region: str) -> str:
    where = "" if region == LIST_PRICES_REGION else f"{LIST_PRICES_REGION} "
    return f"{where}list price table of {LIST_PRICES_DATE}"


def product_filters(instance_type: str, region: str, kind: str) -> list[dict[str, str]]:
    """GetProducts filters for one SageMaker instance type's on-demand rate for a job kind in a region."""
    return [
        {"Type": "TERM_MATCH", "Field": "productFamily", "Value": PRODUCT_FAMILY},
        {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
        {"Type": "TERM_MATCH", "Field": "instanceName", "Value": instance_type},
        {"Type": "TERM_MATCH", "Field": "platoinstancetype", "Value": PLATO_INSTANCE_TYPES[kind]},
    ]


def hourly_usd(price_list_item: Any, instance_type: str, kind: str) -> float | None:
    """The on-demand USD/hour of one PriceList item (a JSON string) if it is this instance type's
    `<region>-Train:` / `-Processing:` usage, else None."""
    try:
        document = json.loads(price_list_item) if isinstance(price_list_item, str) else price_list_item
        usage = str(document["product"]["attributes"].get("usagetype", ""))
        if not usage.endswith(f"-{USAGE_COMPONENTS[kind]}:{instance_type}"):
            return None
        for term in (document.get("terms", {}).get("OnDemand") or {}).values():
            for dimension in (term.get("priceDimensions") or {}).values():
                if str(dimension.get("unit", "")).lower() not in ("hrs", "hours", "hour"):
                    continue
                usd = float(dimension["pricePerUnit"]["USD"])
                if usd > 0:
                    return usd
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return None


class PriceList:
    """On-demand SageMaker prices, from the Price List API (`pricing`: a boto3 `pricing` client, or
    None for the dated table only); answers are cached for this object's (the process's) lifetime."""

    def __init__(self, pricing: Any | None) -> None:
        self.pricing = pricing
        self._cache: dict[tuple[str, str, str], float | None] = {}

    def price(self, instance_type: str, region: str, kind: str) -> Price | None:
        """USD/hour and where it came from; None when neither the API nor the table knows the type."""
        key = (instance_type, region, kind)
        if key not in self._cache and self.pricing is not None:
            try:
                self._cache[key] = self._ask(instance_type, region, kind)
            except Exception as error:  # noqa: BLE001 (unreachable, denied, throttled, malformed: table instead)
                logger.warning("the Price List API did not answer for %s (%s): %s", instance_type, kind,
                               type(error).__name__)
        usd = self._cache.get(key)
        if usd is not None:
            return Price(usd, API_SOURCE)
        if instance_type in LIST_PRICES:
            return Price(LIST_PRICES[instance_type], list_price_source(region))
        return None

    def _ask(self, instance_type: str, region: str, kind: str) -> float | None:
        assert self.pricing is not None
        token = ""
        for _ in range(5):  # one product expected; a few pages at most
            page = self.pricing.get_products(ServiceCode=SERVICE_CODE, FormatVersion="aws_v1", MaxResults=20,
                                             Filters=product_filters(instance_type, region, kind),
                                             **({"NextToken": token} if token else {}))
            for item in page.get("PriceList") or []:
                usd = hourly_usd(item, instance_type, kind)
                if usd is not None:
                    return usd
            token = str(page.get("NextToken") or "")
            if not token:
                break
        return None


# --- one job -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class JobCost:
    step: str
    kind: str
    instance_type: str = ""
    instance_count: int = 0
    #: training: TrainingTimeInSeconds; processing: end - start.
    seconds: float | None = None
    billable_seconds: float | None = None
    spot: bool = False
    usd_per_hour: float | None = None
    price_source: str = ""
    #: The execution a cached step's job came from ('' when the step ran its own job).
    reused_from: str = ""

    @property
    def spot_saving(self) -> float | None:
        """`1 - billable / training` as SageMaker reports managed-spot savings (None without spot)."""
        if not self.spot or not self.seconds or self.billable_seconds is None:
            return None
        return max(0.0, 1 - self.billable_seconds / self.seconds)

    @property
    def usd(self) -> float | None:
        if self.reused_from:
            return 0.0
        if self.usd_per_hour is None or self.billable_seconds is None:
            return None
        return self.billable_seconds / 3600 * max(1, self.instance_count) * self.usd_per_hour

    def line(self) -> str:
        """`Train: ml.g4dn.xlarge × 1, 1h02m training, 22m billable (spot saved 65%), ≈ $0.27`."""
        if self.reused_from:
            return f"{self.step}: reused from execution {self.reused_from.rsplit('/', 1)[-1]} (step cache), $0.00"
        parts = [f"{self.instance_type or 'instance type unknown'} × {self.instance_count or '?'}"]
        if self.kind == TRAINING and self.seconds is not None:
            parts.append(f"{duration(self.seconds)} training")
            if self.billable_seconds is not None and (self.spot or self.billable_seconds != self.seconds):
                saving = self.spot_saving
                parts.append(f"{duration(self.billable_seconds)} billable"
                             + (f" (spot saved {saving:.0%})" if saving is not None else ""))
        elif self.seconds is not None:
            parts.append(duration(self.seconds))
        usd = self.usd
        if usd is not None:
            source = "" if self.price_source == API_SOURCE else f" ({self.price_source})"
            parts.append(f"{approx(usd)}{source}")
        elif self.usd_per_hour is None:
            parts.append("price unknown")
        else:
            parts.append("not billed yet")
        return f"{self.step}: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        saving = self.spot_saving
        usd = self.usd
        return {"step": self.step, "kind": self.kind, "instance_type": self.instance_type,
                "instance_count": self.instance_count, "seconds": self.seconds,
                "billable_seconds": self.billable_seconds, "spot": self.spot,
                "spot_saving": None if saving is None else round(saving, 4),
                "usd_per_hour": self.usd_per_hour, "price_source": self.price_source,
                "usd": None if usd is None else round(usd, 4), "reused_from": self.reused_from,
                "line": self.line()}


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _elapsed(start: Any, end: Any) -> float | None:
    if isinstance(start, datetime) and isinstance(end, datetime):
        return max(0.0, (end - start).total_seconds())
    if isinstance(start, int | float) and isinstance(end, int | float):  # epoch seconds
        return max(0.0, float(end) - float(start))
    return None


def job_cost(step: str, kind: str, description: dict[str, Any], prices: PriceList, region: str) -> JobCost:
    """The cost of one job from its DescribeTrainingJob (kind TRAINING) or DescribeProcessingJob response."""
    if kind == TRAINING:
        resource = description.get("ResourceConfig") or {}
        instance_type, count = str(resource.get("InstanceType") or ""), int(resource.get("InstanceCount") or 0)
        groups = resource.get("InstanceGroups") or []
        if not instance_type and len({g.get("InstanceType") for g in groups}) == 1:  # one heterogeneous group
            instance_type = str(groups[0].get("InstanceType") or "")
            count = sum(int(g.get("InstanceCount") or 0) for g in groups)
        seconds = _seconds(description.get("TrainingTimeInSeconds"))
        billable = _seconds(description.get("BillableTimeInSeconds"))
        spot = bool(description.get("EnableManagedSpotTraining"))
    else:
        cluster = (description.get("ProcessingResources") or {}).get("ClusterConfig") or {}
        instance_type, count = str(cluster.get("InstanceType") or ""), int(cluster.get("InstanceCount") or 0)
        seconds = billable = _elapsed(description.get("ProcessingStartTime"), description.get("ProcessingEndTime"))
        spot = False
    price = prices.price(instance_type, region, kind) if instance_type else None
    return JobCost(step=step, kind=kind, instance_type=instance_type, instance_count=count, seconds=seconds,
                   billable_seconds=billable, spot=spot, usd_per_hour=price.usd_per_hour if price else None,
                   price_source=price.source if price else "")


def reused_job(step: str, kind: str, source_execution_arn: str) -> JobCost:
    return JobCost(step=step, kind=kind, reused_from=source_execution_arn)


# --- one execution -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ExecutionCost:
    jobs: list[JobCost] = field(default_factory=list)

    @property
    def total_usd(self) -> float | None:
        known = [job.usd for job in self.jobs if job.usd is not None]
        return sum(known) if known else None

    @property
    def unpriced(self) -> list[str]:
        return [job.step for job in self.jobs if job.usd is None]

    def total_line(self) -> str:
        total = self.total_usd
        if total is None:
            return "Total: price unknown"
        missing = f" (without {', '.join(self.unpriced)}: price unknown)" if self.unpriced else ""
        return f"Total: {approx(total)}{missing}"

    def lines(self) -> list[str]:
        return [job.line() for job in self.jobs] + ([self.total_line()] if self.jobs else [])

    def to_dict(self) -> dict[str, Any]:
        total = self.total_usd
        return {"jobs": [job.to_dict() for job in self.jobs], "total_usd": None if total is None else round(total, 4),
                "unpriced": self.unpriced, "total_line": self.total_line() if self.jobs else ""}


#: A step's metadata key -> (job kind, the Describe call and its name argument).
_JOB_KINDS = {"TrainingJob": TRAINING, "ProcessingJob": PROCESSING}


def execution_cost(sagemaker: Any, steps: list[Any], prices: PriceList, region: str) -> ExecutionCost:
    """Every job of an execution's steps (`execution_report.Step`s): Describe*Job for each one it ran,
    none for a step the cache served. Describe errors propagate (callers are best effort)."""
    jobs: list[JobCost] = []
    for step in steps:
        for key, kind in _JOB_KINDS.items():
            arn = str((step.metadata.get(key) or {}).get("Arn") or "")
            if not arn:
                continue
            if getattr(step, "cache_source", ""):
                jobs.append(reused_job(step.name, kind, step.cache_source))
                continue
            name = arn.rsplit("/", 1)[-1]
            if kind == TRAINING:
                description = sagemaker.describe_training_job(TrainingJobName=name)
            else:
                description = sagemaker.describe_processing_job(ProcessingJobName=name)
            jobs.append(job_cost(step.name, kind, dict(description), prices, region))
    return ExecutionCost(jobs)


# --- words -------------------------------------------------------------------------------------

def duration(seconds: float) -> str:
    """`1h02m`, `22m`, `45s`."""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m" if minutes else f"{secs}s"


def approx(usd: float) -> str:
    """`≈ $0.27`; `< $0.01` for less than half a cent (a cached run: `≈ $0.00`)."""
    return "< $0.01" if 0 < usd < 0.005 else f"≈ ${usd:.2f}"
