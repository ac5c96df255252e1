"""Loads the DAGs of a folder with Airflow's own DagBag and checks them.

    AIRFLOW_HOME=$(mktemp -d) python deploy/check_airflow_dag.py deploy/airflow

Exits 1 on an import error, when no DAG is found, or when
`pinstream_daily_replay` is not the daily one-task replay the README
describes (`.ci/run` runs this with apache-airflow from PyPI).
"""
import os
import sys

os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from airflow.models import DagBag  # noqa: E402

bag = DagBag(dag_folder=sys.argv[1])
if bag.import_errors:
    print("import errors:", bag.import_errors)
    sys.exit(1)
dag = bag.dags.get("pinstream_daily_replay")
if dag is None:
    print("no DAG pinstream_daily_replay among", sorted(bag.dags))
    sys.exit(1)
schedule = getattr(dag, "schedule", None) or getattr(dag, "schedule_interval", None)
tasks = [t.task_id for t in dag.tasks]
command = dag.tasks[0].bash_command if tasks else ""
print(f"loaded {dag.dag_id}: schedule {schedule}, tasks {tasks}")
problems = []
if str(schedule) != "@daily":
    problems.append(f"schedule is {schedule}, not @daily")
if tasks != ["replay_previous_day"]:
    problems.append(f"tasks are {tasks}")
for part in ("pinstream replay", "--from {{ ds }}", "--to {{ macros.ds_add(ds, 1) }}", "--state-dir"):
    if part not in command:
        problems.append(f"the command lacks `{part}`")
if problems:
    print("\n".join(problems))
    sys.exit(1)
