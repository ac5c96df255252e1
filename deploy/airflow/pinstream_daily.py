"""Airflow DAG: replay the previous day's archived partitions with pinstream.

What the seeds ran as a daily Databricks notebook job (mount S3, read the
topic JSON, clean, join, answer the questions), as one command. Each run
replays the objects of its data interval (the TimeBasedPartitioner's
year=/month=/day=/hour= directories) into a state dir of its own, so a
retried or re-run day is idempotent (positions are state: nothing counts
twice), and writes the eight answers as JSON. pinstream exits non-zero on
failure, which fails the task and lets Airflow retry it.

Airflow Variables:
  pinstream_archive     s3://bucket/prefix (or a local directory) holding topics/
  pinstream_state_root  where the per-day state dirs live, e.g. /var/lib/pinstream/daily
  pinstream_answers     directory for the answer files, e.g. /var/lib/pinstream/answers
Credentials and region come from the AWS chain of the worker (instance role,
AWS_PROFILE, AWS_REGION), as on the seeds' EC2 client.
"""
from datetime import datetime, timedelta

from airflow import DAG

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2
    from airflow.operators.bash import BashOperator

REPLAY = (
    "set -euo pipefail; "
    "mkdir -p {{ var.value.pinstream_answers }}; "
    "pinstream replay --archive {{ var.value.pinstream_archive }} "
    "--state-dir {{ var.value.pinstream_state_root }}/{{ ds }} "
    "--from {{ ds }} --to {{ macros.ds_add(ds, 1) }} "
    "--format json > {{ var.value.pinstream_answers }}/{{ ds }}.json.tmp && "
    "mv {{ var.value.pinstream_answers }}/{{ ds }}.json.tmp {{ var.value.pinstream_answers }}/{{ ds }}.json"
)

with DAG(
    dag_id="pinstream_daily_replay",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    tags=["pinstream"],
) as dag:
    BashOperator(task_id="replay_previous_day", bash_command=REPLAY)
