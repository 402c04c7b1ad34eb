"""Settings read from the environment: `DATABASE_URL`, `KAFKA_BOOTSTRAP_SERVERS` and
`INCIDENTFLOW_<NAME>` for every other field of `domain.settings.Settings`
(e.g. `INCIDENTFLOW_AUTO_RESOLVE_AFTER_SECONDS`). Read once, by the command line.
"""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.settings import Settings


class EnvironmentSettings(Settings, BaseSettings):
    """`Settings` filled from environment variables (pydantic-settings parses JSON values such as
    `INCIDENTFLOW_SEVERITY_THRESHOLDS=[10,50,200]`)."""

    model_config = SettingsConfigDict(
        env_prefix="INCIDENTFLOW_", extra="ignore", populate_by_name=True
    )

    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("DATABASE_URL", "INCIDENTFLOW_DATABASE_URL")
    )
    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "KAFKA_BOOTSTRAP_SERVERS", "INCIDENTFLOW_KAFKA_BOOTSTRAP_SERVERS"
        ),
    )


def read_settings() -> Settings:
    """The settings of this process, from its environment (raises pydantic's ValidationError)."""
    return EnvironmentSettings()
