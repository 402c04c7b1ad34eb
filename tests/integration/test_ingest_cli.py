"""`incidentflow ingest` refuses input topics that cannot be co-partitioned, in one clear line."""

from __future__ import annotations

import subprocess
import sys

from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def test_unequal_input_partitions_stop_ingest_with_a_clear_message(
    database_url: str, bootstrap_servers: str, topic_prefix: str
) -> None:
    failures, violations, commands = (
        f"{topic_prefix}failures", f"{topic_prefix}violations", f"{topic_prefix}commands",
    )  # fmt: skip
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(failures, num_partitions=4, replication_factor=1),
                NewTopic(violations, num_partitions=2, replication_factor=1),
                NewTopic(commands, num_partitions=4, replication_factor=1),
            ]
        )
    finally:
        await admin.close()
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": database_url,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "INCIDENTFLOW_FAILURES_TOPIC": failures,
        "INCIDENTFLOW_VIOLATIONS_TOPIC": violations,
        "INCIDENTFLOW_COMMANDS_TOPIC": commands,
        "INCIDENTFLOW_CHANGES_TOPIC": f"{topic_prefix}changes",
        "INCIDENTFLOW_DEADLETTER_TOPIC": f"{topic_prefix}deadletter",
    }

    result = subprocess.run(
        [sys.executable, "-m", "incidentflow", "ingest"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert f"{violations}=2" in last and f"{failures}=4" in last, result.stderr
