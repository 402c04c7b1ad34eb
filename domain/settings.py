"""Every setting of incidentflow, with its default: the one definition every process reads.

This is plain data: nothing here reads the environment. The command line
(`incidentflow.environment.read_settings`) fills it from `DATABASE_URL`,
`KAFKA_BOOTSTRAP_SERVERS` and `INCIDENTFLOW_<NAME>` variables; tests build it directly. The
defaults of the rules come from `AggregationConfig` and `SlaTargets`, not written again here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.config import AggregationConfig
from domain.contracts import LONGEST_DURATION_SECONDS
from domain.metrics import SlaTargets

_RULES = AggregationConfig()
_SLA = SlaTargets()


def _seconds(value: timedelta) -> int:
    return int(value.total_seconds())


class Settings(BaseModel):
    """All settings with their defaults (each documented in the README)."""

    model_config = ConfigDict(extra="ignore")

    database_url: str | None = None
    kafka_bootstrap_servers: str | None = None

    log_level: str = Field(default="info", pattern="^(?i:debug|info|warning|error)$")

    # Topics
    failures_topic: str = "llm.call.failures"
    violations_topic: str = "policy.violations"
    commands_topic: str = "incident.commands"
    changes_topic: str = "incident.changes"
    deadletter_topic: str = "incidentflow.deadletter"
    lesson_commands_topic: str = "lesson.commands"
    """Lesson triage commands (`domain.lesson_triage.LessonCommand`), read by the processors."""
    topic_partitions: int = Field(default=8, ge=1, le=1024)

    # The aggregation rules
    auto_resolve_after_seconds: int = Field(
        default=_RULES.auto_resolve_after_seconds, ge=1, le=LONGEST_DURATION_SECONDS
    )
    aggregation_window_seconds: int = Field(
        default=_RULES.aggregation_window_seconds, ge=0, le=LONGEST_DURATION_SECONDS
    )
    incident_cooldown_seconds: int = Field(
        default=_RULES.incident_cooldown_seconds, ge=0, le=LONGEST_DURATION_SECONDS
    )
    max_incidents_per_tenant_per_hour: int = Field(
        default=_RULES.max_incidents_per_tenant_per_hour, ge=1
    )
    max_related_calls_per_incident: int = Field(default=_RULES.max_related_calls_per_incident, ge=0)
    severity_thresholds: tuple[int, int, int] = _RULES.severity_thresholds
    max_future_skew_seconds: int = Field(
        default=_RULES.max_future_skew_seconds, ge=0, le=LONGEST_DURATION_SECONDS
    )
    max_lateness_seconds: int = Field(
        default=_RULES.max_lateness_seconds, ge=0, le=LONGEST_DURATION_SECONDS
    )
    idle_watermark_advance: bool = True
    idle_watermark_seconds: float = Field(default=60.0, gt=0)

    # Ingest worker
    consumer_group: str = "incidentflow-ingest"
    processors_group: str = "incidentflow-processors"
    """The stream processors' faust app id, which is also their consumer group."""
    ingest_max_batch: int = Field(default=5000, ge=1)
    max_task_idle_ms: int = Field(default=100, ge=0)
    session_timeout_ms: int = Field(default=6000, ge=1000)
    heartbeat_interval_ms: int = Field(default=1000, ge=100)
    outage_seconds: float = Field(default=300.0, gt=0)
    """How long a worker retries an unreachable PostgreSQL or broker before it exits 1."""
    startup_timeout_seconds: float = Field(default=60.0, gt=0)
    """How long the consumer's start and its group join may take before they are retried."""
    dead_letter_guard_share: float = Field(default=0.5, gt=0, le=1)
    """Above this share of dead letters among a partition's recent messages, the guard fires."""
    dead_letter_guard_window: int = Field(default=1000, ge=10)
    """The recent messages per partition the guard looks at."""
    dead_letter_guard_action: Literal["warn", "stop"] = "warn"
    """`warn`: log an error and show it in the metrics; `stop`: also exit 1."""

    # Metrics (Prometheus): each process serves /metrics on its own port; 0 picks a free one.
    metrics_host: str = "0.0.0.0"
    ingest_metrics_port: int = Field(default=9101, ge=0, le=65535)
    processors_metrics_port: int = Field(default=9102, ge=0, le=65535)

    # SLA targets on time to resolution, by severity
    sla_critical_seconds: int = Field(
        default=_seconds(_SLA.critical), ge=1, le=LONGEST_DURATION_SECONDS
    )
    sla_high_seconds: int = Field(default=_seconds(_SLA.high), ge=1, le=LONGEST_DURATION_SECONDS)
    sla_medium_seconds: int = Field(
        default=_seconds(_SLA.medium), ge=1, le=LONGEST_DURATION_SECONDS
    )
    sla_low_seconds: int = Field(default=_seconds(_SLA.low), ge=1, le=LONGEST_DURATION_SECONDS)

    def sla_targets(self) -> SlaTargets:
        return SlaTargets(
            critical=timedelta(seconds=self.sla_critical_seconds),
            high=timedelta(seconds=self.sla_high_seconds),
            medium=timedelta(seconds=self.sla_medium_seconds),
            low=timedelta(seconds=self.sla_low_seconds),
        )

    def aggregation(self) -> AggregationConfig:
        return AggregationConfig(
            auto_resolve_after_seconds=self.auto_resolve_after_seconds,
            aggregation_window_seconds=self.aggregation_window_seconds,
            incident_cooldown_seconds=self.incident_cooldown_seconds,
            max_incidents_per_tenant_per_hour=self.max_incidents_per_tenant_per_hour,
            max_related_calls_per_incident=self.max_related_calls_per_incident,
            severity_thresholds=self.severity_thresholds,
            max_future_skew_seconds=self.max_future_skew_seconds,
            max_lateness_seconds=self.max_lateness_seconds,
        )

    @property
    def input_topics(self) -> tuple[str, str, str]:
        """The three input topics in merge tie-break order."""
        return (self.failures_topic, self.violations_topic, self.commands_topic)
