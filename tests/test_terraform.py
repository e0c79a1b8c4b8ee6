"""Offline checks of the Terraform stack in terraform/: formatting, validation, structure, security scan.

- `terraform fmt -check` (needs only the terraform binary),
- `terraform init` + `validate` on a temporary copy of terraform/, with stand-ins for the artefacts
  `make package` builds (glue.tf hashes them). The AWS provider comes from the filesystem mirror
  in TF_PLUGIN_DIR (default /opt/tf-plugins) when it exists, so no network is needed; elsewhere
  `init` downloads it,
- structural assertions on the parsed HCL (python-hcl2) for the contract the Python jobs and the
  operators rely on: schedule, trigger chain, job arguments, alerting wiring, bucket hardening,
- checkov with zero failed checks (skips must be inline with a reason), from the tool virtualenv
  `make checkov-env` creates (.tools/checkov; checkov pins an old boto3, so never in .venv).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from fnmatch import fnmatch
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from shared.config import DEFAULT_LOOKBACK_MINUTES

ROOT = Path(__file__).resolve().parents[1]
TF_DIR = ROOT / "terraform"
CHECKOV = Path(os.environ.get("CHECKOV_BIN", ROOT / ".tools" / "checkov" / "bin" / "checkov"))

JOBS = ("extract", "transform", "load")
SCHEDULE = "cron(0/20 * * * ? *)"

# What glue.tf uploads from dist/ (`make package` builds it); validate evaluates their filemd5.
DIST_ARTEFACTS = ("shared.zip", "rds-global-bundle.pem", *(f"glue_jobs/{job}.py" for job in JOBS))


# ---------------------------------------------------------------------------------------------
# Parsing helpers. python-hcl2 keeps the quotes of string literals ('"abc"') and turns
# expressions into '${...}' strings; `clean` strips the quotes and hcl2's bookkeeping keys so the
# tests compare plain values.
# ---------------------------------------------------------------------------------------------


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def clean(node: Any) -> Any:
    if isinstance(node, dict):
        return {_unquote(k): clean(v) for k, v in node.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(node, list):
        return [clean(v) for v in node]
    if isinstance(node, str):
        return _unquote(node)
    return node


@cache
def raw_files() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(TF_DIR.glob("*.tf"))}


@cache
def stack() -> dict[str, Any]:
    """All .tf files merged: resources/data by type and name, locals, variables, outputs."""
    merged: dict[str, Any] = {"resource": {}, "data": {}, "locals": {}, "variable": {}, "output": {}}
    for text in raw_files().values():
        parsed = clean(hcl2.loads(text))
        for kind in ("resource", "data"):
            for block in parsed.get(kind, []):
                for rtype, by_name in block.items():
                    for rname, body in by_name.items():
                        assert rname not in merged[kind].setdefault(rtype, {}), f"duplicate {rtype}.{rname}"
                        merged[kind][rtype][rname] = body
        for block in parsed.get("locals", []):
            merged["locals"].update(block)
        for kind in ("variable", "output"):
            for block in parsed.get(kind, []):
                merged[kind].update(block)
    return merged


def resources(rtype: str) -> dict[str, Any]:
    return stack()["resource"].get(rtype, {})


def resource(rtype: str, name: str) -> dict[str, Any]:
    found = resources(rtype)
    assert name in found, f"{rtype}.{name} not defined (have: {sorted(found)})"
    return found[name]


def local(name: str) -> Any:
    assert name in stack()["locals"], f"local.{name} not defined"
    return stack()["locals"][name]


def var_default(name: str) -> Any:
    assert name in stack()["variable"], f"var.{name} not defined"
    return stack()["variable"][name].get("default")


def resolve(value: Any) -> Any:
    """Follow a bare `${local.x}` / `${var.x}` reference to its value / default."""
    if isinstance(value, str):
        m = re.fullmatch(r"\$\{local\.(\w+)\}", value)
        if m:
            return resolve(local(m.group(1)))
        m = re.fullmatch(r"\$\{var\.(\w+)\}", value)
        if m:
            return var_default(m.group(1))
    return value


def block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The one nested block `name` of a resource body."""
    blocks = body.get(name)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected exactly one {name} block, got {blocks!r}"
    return blocks[0]


def glue_job_ref(expr: str) -> str:
    m = re.fullmatch(r'\$\{aws_glue_job\.this\["(\w+)"\]\.name\}', expr)
    assert m, f"expected a reference to aws_glue_job.this[<step>].name, got {expr!r}"
    return m.group(1)


def job_arguments(step: str) -> dict[str, Any]:
    """The default_arguments Glue gets for one job: the common ones merged with the job's own."""
    job = resource("aws_glue_job", "this")
    assert job["default_arguments"] == "${merge(local.common_job_arguments, each.value.arguments)}"
    return {**local("common_job_arguments"), **local("jobs")[step]["arguments"]}


# ---------------------------------------------------------------------------------------------
# Formatting
# ---------------------------------------------------------------------------------------------


@pytest.mark.integration  # terraform
def test_terraform_fmt_is_clean() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip(
            "terraform binary not on PATH: cannot run `terraform fmt -check` (install Terraform >= 1.5)"
        )
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TF_DIR)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (
        f"terraform fmt would change files (run `terraform fmt -recursive terraform`):\n{result.stdout}"
    )


# ---------------------------------------------------------------------------------------------
# terraform init + validate, on a temporary copy (never in terraform/ itself)
# ---------------------------------------------------------------------------------------------


def terraform_env() -> dict[str, str]:
    """The environment terraform runs in here: no upgrade check, no prompts, no AWS lookups."""
    env = dict(os.environ)
    env.update(
        CHECKPOINT_DISABLE="1",
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        AWS_EC2_METADATA_DISABLED="true",
    )
    return env


def plugin_dir_flags() -> list[str]:
    """-plugin-dir for the provider mirror (make/infra.mk's TF_PLUGIN_DIR) when it exists."""
    mirror = os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins")
    return [f"-plugin-dir={Path(mirror).resolve()}"] if mirror and Path(mirror).is_dir() else []


def run_terraform(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    terraform = shutil.which("terraform")
    assert terraform is not None
    return subprocess.run(
        [terraform, f"-chdir={workdir}", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=terraform_env(),
    )


def copy_stack(root: Path) -> Path:
    """terraform/ copied to root/terraform (no local state, lock or .terraform), stand-ins in root/dist."""
    workdir = root / "terraform"
    shutil.copytree(
        TF_DIR,
        workdir,
        ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*", "*.tfvars"),
    )
    for name in DIST_ARTEFACTS:
        artefact = root / "dist" / name
        artefact.parent.mkdir(parents=True, exist_ok=True)
        artefact.write_text(f"stand-in for dist/{name}\n", encoding="utf-8")
    return workdir


@pytest.fixture(scope="module")
def initialised_stack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary copy of the stack after `terraform init -backend=false` (offline with the mirror)."""
    if shutil.which("terraform") is None:
        pytest.skip("terraform binary not on PATH: cannot run `terraform init` (install Terraform >= 1.7)")
    workdir = copy_stack(tmp_path_factory.mktemp("stack"))
    init = run_terraform(workdir, "init", "-backend=false", "-input=false", "-no-color", *plugin_dir_flags())
    assert init.returncode == 0, f"terraform init failed:\n{init.stdout[-3000:]}\n{init.stderr[-3000:]}"
    return workdir


def diagnostics(report: dict[str, Any]) -> list[str]:
    """terraform's JSON diagnostics as one line each: severity, summary, detail, file:line."""
    lines = []
    for d in report.get("diagnostics", []):
        where = d.get("range") or {}
        at = f" ({where.get('filename')}:{where.get('start', {}).get('line')})" if where else ""
        lines.append(f"{d['severity']}: {d['summary']}: {d.get('detail', '')}{at}")
    return lines


@pytest.mark.integration  # terraform
def test_terraform_validate_accepts_the_stack(initialised_stack: Path) -> None:
    # The provider's own checks run here (argument names and types, and value rules such as the
    # characters EC2 allows in a security group rule description), which no HCL parsing can do.
    result = run_terraform(initialised_stack, "validate", "-json", "-no-color")
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"terraform validate printed no JSON (exit {result.returncode}):\n{result.stderr[-3000:]}"
        )
    problems = "\n".join(diagnostics(report))
    assert report["valid"] is True and result.returncode == 0, f"terraform validate failed:\n{problems}"
    assert not problems, f"terraform validate warns:\n{problems}"


@pytest.mark.integration  # terraform
def test_terraform_test_runs_of_the_variable_rules_pass(initialised_stack: Path) -> None:
    # terraform/tests/*.tftest.hcl: each run plans the whole stack against a mocked AWS provider
    # (no credentials, no network); expect_failures runs pass only if the variable refuses the value.
    result = run_terraform(initialised_stack, "test", "-json", "-no-color")
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    planned = {
        (path, run)
        for event in events
        if event["type"] == "test_abstract"
        for path, runs in event["test_abstract"].items()
        for run in runs
    }
    outcome = {
        (e["test_run"]["path"], e["test_run"]["run"]): e["test_run"]["status"]
        for e in events
        if e["type"] == "test_run" and "status" in e["test_run"]
    }
    errors = "\n".join(
        diagnostics({"diagnostics": [e["diagnostic"] for e in events if e["type"] == "diagnostic"]})
    )
    assert ("tests/variables.tftest.hcl", "lookback_zero_is_refused") in planned, sorted(planned)
    statuses = {f"{path} {run}": outcome.get((path, run), "not run") for path, run in planned}
    failed = {name: status for name, status in statuses.items() if status != "pass"}
    assert not failed and result.returncode == 0, f"terraform test runs did not pass: {failed}\n{errors}"


def test_versions_pin_terraform_and_the_aws_provider() -> None:
    text = raw_files()["versions.tf"]
    assert re.search(r'required_version\s*=\s*">=\s*1\.5', text)
    assert re.search(r'source\s*=\s*"hashicorp/aws"', text)
    assert re.search(r'version\s*=\s*"~>\s*5\.', text)


# ---------------------------------------------------------------------------------------------
# Workflow: schedule and trigger chain
# ---------------------------------------------------------------------------------------------


def test_workflow_is_named_totes_etl_and_runs_once_at_a_time() -> None:
    workflow = resource("aws_glue_workflow", "this")
    assert workflow["name"] == "${local.workflow_name}"
    assert local("workflow_name") == "${var.name_prefix}-etl"
    assert var_default("name_prefix") == "totes"
    assert workflow["max_concurrent_runs"] == 1


def test_scheduled_trigger_starts_extract_every_20_minutes_in_the_workflow() -> None:
    scheduled = {n: t for n, t in resources("aws_glue_trigger").items() if t["type"] == "SCHEDULED"}
    assert len(scheduled) == 1, f"expected one scheduled trigger, got {sorted(scheduled)}"
    trigger = next(iter(scheduled.values()))
    assert trigger["schedule"] == SCHEDULE
    assert trigger["workflow_name"] == "${aws_glue_workflow.this.name}"
    actions = trigger["actions"]
    assert len(actions) == 1
    assert glue_job_ref(actions[0]["job_name"]) == "extract"


def test_conditional_triggers_chain_extract_transform_load_on_succeeded() -> None:
    chain: dict[str, str] = {}
    for name, trigger in resources("aws_glue_trigger").items():
        if trigger["type"] != "CONDITIONAL":
            continue
        assert trigger["workflow_name"] == "${aws_glue_workflow.this.name}", name
        assert trigger.get("start_on_creation") is True, f"{name}: a conditional trigger must be activated"
        predicate = block(trigger, "predicate")
        conditions = predicate["conditions"]
        assert len(conditions) == 1, name
        condition = conditions[0]
        assert condition["state"] == "SUCCEEDED", name
        assert condition["logical_operator"] == "EQUALS", name
        (action,) = trigger["actions"]
        before, after = glue_job_ref(condition["job_name"]), glue_job_ref(action["job_name"])
        assert before not in chain, f"two triggers fire after {before}"
        chain[before] = after
    assert chain == {"extract": "transform", "transform": "load"}


# ---------------------------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------------------------


def test_there_are_exactly_the_three_jobs() -> None:
    job = resource("aws_glue_job", "this")
    assert job["for_each"] == "${local.jobs}"
    assert tuple(local("jobs")) == JOBS
    assert local("job_names") == '${{for name in keys(local.jobs) : name => "${var.name_prefix}-${name}"}}'


def test_jobs_are_glue_5_with_one_concurrent_run_and_sized_by_variables() -> None:
    job = resource("aws_glue_job", "this")
    assert job["glue_version"] == "5.0"
    assert block(job, "execution_property")["max_concurrent_runs"] == 1
    assert resolve(job["worker_type"]) == "G.1X"
    assert resolve(job["number_of_workers"]) == 2
    assert job["security_configuration"] == "${aws_glue_security_configuration.this.name}"
    command = block(job, "command")
    assert command["name"] == "glueetl"
    assert command["script_location"] == (
        's3://${aws_s3_bucket.this["scripts"].bucket}/${aws_s3_object.script[each.key].key}'
    )
    for step in JOBS:
        timeout = local("jobs")[step]["timeout"]
        assert timeout == f"${{var.{step}_timeout_minutes}}"
        assert isinstance(var_default(f"{step}_timeout_minutes"), int)


def test_every_job_retries_once() -> None:
    # The jobs are idempotent; without a retry one transient failure waits for the next schedule
    # (20 minutes) and misses the contract's 30-minute freshness. One retry, not more: a job that
    # fails twice is not transient, and each attempt may run up to its timeout.
    job = resource("aws_glue_job", "this")
    assert job["for_each"] == "${local.jobs}"
    assert job["max_retries"] == 1


def test_every_job_runs_in_the_vpc_through_both_jdbc_connections() -> None:
    job = resource("aws_glue_job", "this")
    assert job["connections"] == [
        '${aws_glue_connection.database["totesys"].name}',
        '${aws_glue_connection.database["warehouse"].name}',
    ]
    connection = resource("aws_glue_connection", "database")
    assert connection["for_each"] == "${local.databases}"
    assert set(local("databases")) == {"totesys", "warehouse"}
    assert connection["connection_type"] == "JDBC"
    props = connection["connection_properties"]
    assert props["JDBC_CONNECTION_URL"].startswith("jdbc:postgresql://")
    assert props["SECRET_ID"] == "${aws_secretsmanager_secret.database[each.key].name}"
    assert not any("PASSWORD" in key.upper() or "USERNAME" in key.upper() for key in props)
    physical = block(connection, "physical_connection_requirements")
    assert physical["subnet_id"] == "${aws_subnet.private.id}"
    assert physical["security_group_id_list"] == ["${aws_security_group.glue.id}"]


@pytest.mark.parametrize("step", JOBS)
def test_every_job_gets_the_contract_arguments(step: str) -> None:
    args = job_arguments(step)
    expected_literals = {
        "--enable-glue-datacatalog": "true",
        "--enable-metrics": "true",
        "--enable-observability-metrics": "true",
    }
    for key, value in expected_literals.items():
        assert args.get(key) == value, f"{step}: {key} = {args.get(key)!r}, expected {value!r}"
    expected_refs = {
        "--LAKE_ROOT": 's3://${aws_s3_bucket.this["processed"].bucket}/',
        "--INGESTION_ROOT": 's3://${aws_s3_bucket.this["ingestion"].bucket}/',
        "--CATALOG_DATABASE": "${aws_glue_catalog_database.this.name}",
        "--TOTESYS_SECRET_ID": '${aws_secretsmanager_secret.database["totesys"].arn}',
        "--WAREHOUSE_SECRET_ID": '${aws_secretsmanager_secret.database["warehouse"].arn}',
        "--LOOKBACK_MINUTES": "${tostring(var.lookback_minutes)}",
        "--TempDir": 's3://${aws_s3_bucket.this["scripts"].bucket}/temp/',
        "--extra-py-files": 's3://${aws_s3_bucket.this["scripts"].bucket}/${aws_s3_object.library.key}',
    }
    for key, value in expected_refs.items():
        assert args.get(key) == value, f"{step}: {key} = {args.get(key)!r}, expected {value!r}"
    # Glue's native bookmark reads strictly after the last value: the look-back window is on by
    # default, and the same default as the jobs' own (shared/config.py).
    assert var_default("lookback_minutes") == DEFAULT_LOOKBACK_MINUTES


# Only the extract has a bookmarked source (its JDBC reads); transform and load keep their progress
# in the lake (_state/bookmarks/*.json), so a Glue bookmark there would only make
# `reset-job-bookmark` look meaningful for them.
BOOKMARK_OPTION = {
    "extract": "job-bookmark-enable",
    "transform": "job-bookmark-disable",
    "load": "job-bookmark-disable",
}


@pytest.mark.parametrize("step", JOBS)
def test_only_the_extract_keeps_a_glue_job_bookmark(step: str) -> None:
    assert job_arguments(step).get("--job-bookmark-option") == BOOKMARK_OPTION[step]


@pytest.mark.parametrize("step", JOBS)
def test_glue_parses_each_jobs_arguments_with_its_bookmark_option(step: str) -> None:
    # awsglue's own getResolvedOptions (AWSGlueDataplanePython 5.0.0, pure argparse) over the
    # arguments Terraform gives the job: it refuses a bookmark option it does not know.
    utils = pytest.importorskip("awsglue.utils", reason="needs the dev dependency AWSGlueDataplanePython")
    from shared.runtime.glue import glue_option_names

    argv = ["script.py", "--JOB_NAME", f"totes-{step}", "--JOB_ID", "j_1", "--JOB_RUN_ID", "jr_1"]
    for key, value in job_arguments(step).items():
        # References (bucket names, ARNs) are only known at apply time: a stand-in value.
        argv += [key, "s3://stand-in/" if "${" in str(value) else str(value)]
    parsed = utils.getResolvedOptions(argv, glue_option_names(argv))
    assert parsed["job_bookmark_option"] == BOOKMARK_OPTION[step]


@pytest.mark.parametrize("step", JOBS)
def test_no_glue_4_continuous_logging_flags(step: str) -> None:
    # Glue 5.0 logs every job in real time (/aws-glue/jobs/error and /aws-glue/jobs/output);
    # --enable-continuous-cloudwatch-log and the --continuous-log-* options are Glue 4.0 and earlier.
    old_flags = [key for key in job_arguments(step) if "continuous" in key]
    assert not old_flags, f"{step}: {old_flags} do nothing on Glue 5.0"


def test_code_is_uploaded_from_dist_with_a_content_hash() -> None:
    assert local("dist_dir") == "${path.module}/../dist"
    script = resource("aws_s3_object", "script")
    assert script["for_each"] == "${local.jobs}"
    assert script["key"] == "glue_jobs/${each.key}.py"
    assert script["source"] == "${local.dist_dir}/glue_jobs/${each.key}.py"
    assert script["source_hash"] == '${filemd5("${local.dist_dir}/glue_jobs/${each.key}.py")}'
    library = resource("aws_s3_object", "library")
    assert library["key"] == "lib/shared.zip"
    assert library["source"] == "${local.dist_dir}/shared.zip"
    assert library["source_hash"] == '${filemd5("${local.dist_dir}/shared.zip")}'


def test_rds_ca_bundle_is_uploaded_from_dist_and_given_to_every_job() -> None:
    # The jobs verify the databases' certificates (sslmode=verify-full) against the RDS CA bundle
    # `make package` writes to dist/; Glue copies --extra-files into the script's working directory.
    bundle = resource("aws_s3_object", "rds_ca_bundle")
    assert bundle["bucket"] == '${aws_s3_bucket.this["scripts"].id}'
    assert bundle["key"] == "lib/rds-global-bundle.pem"
    assert bundle["source"] == "${local.dist_dir}/rds-global-bundle.pem"
    assert bundle["source_hash"] == '${filemd5("${local.dist_dir}/rds-global-bundle.pem")}'
    assert bundle["kms_key_id"] == "${aws_kms_key.this.arn}"
    for step in JOBS:
        assert job_arguments(step).get("--extra-files") == (
            's3://${aws_s3_bucket.this["scripts"].bucket}/${aws_s3_object.rds_ca_bundle.key}'
        ), step


def test_glue_role_may_read_every_object_the_jobs_are_given() -> None:
    statement = _glue_statements()["ReadScriptsAndLibrary"]
    assert statement["actions"] == ["s3:GetObject"]
    prefix = '${aws_s3_bucket.this["scripts"].arn}/'
    patterns = [r.removeprefix(prefix) for r in statement["resources"] if r.startswith(prefix)]
    objects = resources("aws_s3_object")
    assert {"script", "library", "rds_ca_bundle"} <= set(objects)
    for name, obj in objects.items():
        assert obj["bucket"] == '${aws_s3_bucket.this["scripts"].id}', name
        keys = (
            [obj["key"].replace("${each.key}", step) for step in JOBS]
            if "${each.key}" in obj["key"]
            else [obj["key"]]
        )
        for key in keys:
            assert any(fnmatch(key, pattern) for pattern in patterns), f"the Glue role cannot read {key}"


def test_catalog_database_name_matches_the_jobs_rule() -> None:
    database = resource("aws_glue_catalog_database", "this")
    assert database["name"] == "${var.catalog_database_name}"
    assert re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", var_default("catalog_database_name"))


# ---------------------------------------------------------------------------------------------
# Alerting
# ---------------------------------------------------------------------------------------------


def test_failed_job_runs_are_sent_to_the_alert_topic() -> None:
    rule = resource("aws_cloudwatch_event_rule", "job_failed")
    assert rule["event_pattern"] == "${jsonencode(local.job_failed_event_pattern)}"
    pattern = local("job_failed_event_pattern")
    assert pattern["source"] == ["aws.glue"]
    assert pattern["detail-type"] == ["Glue Job State Change"]
    assert resolve(pattern["detail"]["state"]) == ["FAILED", "TIMEOUT", "STOPPED"]
    assert pattern["detail"]["jobName"] == "${values(local.job_names)}"

    targets = [
        t
        for t in resources("aws_cloudwatch_event_target").values()
        if t["rule"] == "${aws_cloudwatch_event_rule.job_failed.name}"
    ]
    assert [t["arn"] for t in targets] == ["${aws_sns_topic.alerts.arn}"]

    policy = stack()["data"]["aws_iam_policy_document"]["alerts_topic"]
    publishers = {p for s in policy["statement"] for pr in s["principals"] for p in pr["identifiers"]}
    assert "events.amazonaws.com" in publishers and "cloudwatch.amazonaws.com" in publishers


def test_alert_topic_is_encrypted_and_mails_the_alert_email() -> None:
    topic = resource("aws_sns_topic", "alerts")
    assert topic["kms_master_key_id"] == "${aws_kms_key.this.arn}"
    subscription = resource("aws_sns_topic_subscription", "email")
    assert subscription["protocol"] == "email"
    assert subscription["endpoint"] == "${var.alert_email}"
    assert subscription["topic_arn"] == "${aws_sns_topic.alerts.arn}"


def test_every_alarm_notifies_the_alert_topic() -> None:
    alarms = resources("aws_cloudwatch_metric_alarm")
    assert {"job_run_failed", "workflow_stale"} <= set(alarms)
    for name, alarm in alarms.items():
        assert alarm["alarm_actions"] == ["${aws_sns_topic.alerts.arn}"], name
        assert alarm["actions_enabled"] is True, name


def test_stale_workflow_alarm_breaches_on_an_hour_without_a_load_success() -> None:
    alarm = resource("aws_cloudwatch_metric_alarm", "workflow_stale")
    assert alarm["treat_missing_data"] == "breaching"
    assert alarm["comparison_operator"] == "LessThanThreshold"
    assert alarm["threshold"] == 1
    assert alarm["period"] == 300
    assert alarm["evaluation_periods"] == "${var.stale_after_minutes / 5}"
    assert alarm["datapoints_to_alarm"] == "${var.stale_after_minutes / 5}"
    assert var_default("stale_after_minutes") == 60  # 12 five-minute periods = one hour
    assert alarm["ok_actions"] == ["${aws_sns_topic.alerts.arn}"]

    # The metric it watches is really produced: a filter on the job-run history, which an
    # EventBridge rule over the three jobs' state changes fills.
    metric_filter = resource("aws_cloudwatch_log_metric_filter", "workflow_succeeded")
    assert (
        alarm["metric_name"]
        == "${aws_cloudwatch_log_metric_filter.workflow_succeeded.metric_transformation[0].name}"
    )
    assert (
        alarm["namespace"]
        == block(metric_filter, "metric_transformation")["namespace"]
        == "${local.metric_namespace}"
    )
    pattern = metric_filter["pattern"].replace('\\"', '"')  # hcl2 keeps the HCL escapes
    assert '$.detail.jobName = "${local.job_names["load"]}"' in pattern
    assert '$.detail.state = "SUCCEEDED"' in pattern
    assert metric_filter["log_group_name"] == "${aws_cloudwatch_log_group.job_runs.name}"
    history = resource("aws_cloudwatch_event_target", "job_state_log")
    assert history["arn"] == "${aws_cloudwatch_log_group.job_runs.arn}"
    assert history["rule"] == "${aws_cloudwatch_event_rule.job_state.name}"


def test_freshness_alarm_mails_when_a_change_waits_over_30_minutes_or_no_load_reports() -> None:
    from shared.jobs.freshness import FRESHNESS_LIMIT_MINUTES, METRIC_NAME
    from shared.runtime.glue import METRIC_NAMESPACE

    alarm = resource("aws_cloudwatch_metric_alarm", "freshness")
    # The metric the load publishes through the Glue seam, in the namespace the Glue role may use.
    assert (alarm["metric_name"], resolve(alarm["namespace"])) == (METRIC_NAME, METRIC_NAMESPACE)
    allowed = _glue_statements()["GlueAndEtlMetrics"]["condition"][0]["values"]
    assert "${local.metric_namespace}" in allowed
    assert "dimensions" not in alarm  # the overall datapoint: the worst table's
    assert (alarm["statistic"], alarm["comparison_operator"]) == ("Maximum", "GreaterThanThreshold")
    assert resolve(alarm["threshold"]) == FRESHNESS_LIMIT_MINUTES == 30
    # One load every 20 minutes: a 30-minute period always holds one while the workflow runs, and a
    # period without one (no load committed) is breaching.
    assert (alarm["period"], alarm["evaluation_periods"]) == (1800, 1)
    assert alarm["treat_missing_data"] == "breaching"
    assert alarm["alarm_actions"] == alarm["ok_actions"] == ["${aws_sns_topic.alerts.arn}"]
    assert "aws_cloudwatch_metric_alarm.freshness.alarm_name" in str(
        stack()["output"]["alarm_names"]["value"]
    )


# ---------------------------------------------------------------------------------------------
# Storage and secrets hardening
# ---------------------------------------------------------------------------------------------


def test_data_buckets_block_public_access_encrypt_with_kms_and_are_versioned() -> None:
    assert set(local("buckets")) == {"ingestion", "processed", "scripts", "athena"}
    for rtype in (
        "aws_s3_bucket_public_access_block",
        "aws_s3_bucket_server_side_encryption_configuration",
        "aws_s3_bucket_versioning",
        "aws_s3_bucket_policy",
        "aws_s3_bucket_logging",
        "aws_s3_bucket_lifecycle_configuration",
    ):
        assert resource(rtype, "this")["for_each"] == "${local.buckets}", rtype
    pab = resource("aws_s3_bucket_public_access_block", "this")
    for flag in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        assert pab[flag] is True, flag
    sse = block(resource("aws_s3_bucket_server_side_encryption_configuration", "this"), "rule")
    default = block(sse, "apply_server_side_encryption_by_default")
    assert default["sse_algorithm"] == "aws:kms"
    assert default["kms_master_key_id"] == "${aws_kms_key.this.arn}"
    assert (
        block(resource("aws_s3_bucket_versioning", "this"), "versioning_configuration")["status"] == "Enabled"
    )


def test_access_log_bucket_is_hardened_too() -> None:
    pab = resource("aws_s3_bucket_public_access_block", "access_logs")
    assert all(
        pab[f] is True
        for f in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets")
    )
    sse = block(resource("aws_s3_bucket_server_side_encryption_configuration", "access_logs"), "rule")
    assert block(sse, "apply_server_side_encryption_by_default")["sse_algorithm"] == "AES256"


def test_bucket_policies_deny_plain_http() -> None:
    docs = stack()["data"]["aws_iam_policy_document"]
    for name in ("tls_only", "access_logs"):
        denies = [s for s in docs[name]["statement"] if s.get("effect") == "Deny"]
        assert any(
            c["variable"] == "aws:SecureTransport" and c["values"] == ["false"]
            for s in denies
            for c in s["condition"]
        ), name


def test_secrets_hold_no_literal_value() -> None:
    secret = resource("aws_secretsmanager_secret", "database")
    assert secret["kms_key_id"] == "${aws_kms_key.this.arn}"
    for name, version in resources("aws_secretsmanager_secret_version").items():
        value = version.get("secret_string", "")
        assert value.startswith("${") and value.endswith("}"), (
            f"{name}: secret_string must be computed, not a literal"
        )
    for var in ("totesys_credentials", "warehouse_credentials"):
        spec = stack()["variable"][var]
        assert spec.get("sensitive") is True, var
        assert spec.get("default", "missing") is None, f"{var} must default to null"
    for name, text in raw_files().items():
        assert not re.search(r"secret_string\s*=\s*\"", text), f"{name}: literal secret_string"


SECRET_PATTERNS = [
    re.compile(r'(?i)\b[\w-]*(password|passwd|secret_key|access_key|api_key|token)[\w-]*\s*=\s*"[^"$]+"'),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"(?i)postgres(ql)?://[^:\s/\"]+:[^@\s\"$]+@"),  # URL with an inline password
]


def test_no_hard_coded_secrets_in_terraform() -> None:
    files = {**raw_files()}
    example = TF_DIR / "terraform.tfvars.example"
    if example.exists():
        files[example.name] = example.read_text(encoding="utf-8")
    for name, text in files.items():
        for number, line in enumerate(text.splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            for pattern in SECRET_PATTERNS:
                assert not pattern.search(line), (
                    f"{name}:{number} looks like a hard-coded secret: {line.strip()}"
                )


# ---------------------------------------------------------------------------------------------
# IAM and Athena
# ---------------------------------------------------------------------------------------------


def _glue_statements() -> dict[str, dict[str, Any]]:
    statements = stack()["data"]["aws_iam_policy_document"]["glue"]["statement"]
    return {s["sid"]: s for s in statements}


def test_glue_role_reads_only_the_two_secrets_and_scopes_wildcards() -> None:
    statements = _glue_statements()
    secrets = statements["ReadTheTwoDatabaseSecrets"]
    assert "secretsmanager:GetSecretValue" in secrets["actions"]
    assert secrets["resources"] == "${[for s in aws_secretsmanager_secret.database : s.arn]}"
    wildcard = {sid for sid, s in statements.items() if s["resources"] == ["*"]}
    assert wildcard == {"GlueAndEtlMetrics", "DescribeNetworkForVpcConnections"}
    metrics = statements["GlueAndEtlMetrics"]
    assert metrics["actions"] == ["cloudwatch:PutMetricData"]
    assert metrics["condition"][0]["variable"] == "cloudwatch:namespace"
    assert all(
        a.startswith("ec2:Describe") for a in statements["DescribeNetworkForVpcConnections"]["actions"]
    )
    assert not any(a.endswith(":*") for s in statements.values() for a in s["actions"])
    assert not any(s["actions"] == ["s3:DeleteObjectVersion"] for s in statements.values())


def test_athena_workgroup_enforces_encrypted_results_and_queries_use_partitions() -> None:
    workgroup = resource("aws_athena_workgroup", "this")
    config = block(workgroup, "configuration")
    assert config["enforce_workgroup_configuration"] is True
    result = block(config, "result_configuration")
    assert result["output_location"] == 's3://${aws_s3_bucket.this["athena"].bucket}/results/'
    assert block(result, "encryption_configuration")["encryption_option"] == "SSE_KMS"

    queries = local("named_queries")
    assert len(queries) >= 5
    named = resource("aws_athena_named_query", "this")
    assert named["database"] == "${aws_glue_catalog_database.this.name}"
    assert named["workgroup"] == "${aws_athena_workgroup.this.id}"
    # the SQL is in terraform/queries/<name>.sql, one file per named query, read with file()
    sql_files = {p.stem: p.read_text(encoding="utf-8") for p in sorted((TF_DIR / "queries").glob("*.sql"))}
    assert set(sql_files) == set(queries)
    for name, query in queries.items():
        assert query["query"] == f'${{file("${{path.module}}/queries/{name}.sql")}}'
    text = "\n".join(sql_files.values())
    for table in (
        "fact_sales_order",
        "fact_purchase_order",
        "fact_payment",
        "dim_currency",
        "dim_design",
        "dim_staff",
        "dim_counterparty",
    ):
        assert re.search(rf"\b{table}\b", text), f"no named query uses {table}"
    assert text.count("created_year") >= 4, "fact queries should filter on the created_year partition"


# ---------------------------------------------------------------------------------------------
# make/infra.mk and checkov
# ---------------------------------------------------------------------------------------------


def test_infra_make_targets_are_documented() -> None:
    text = (ROOT / "make" / "infra.mk").read_text(encoding="utf-8")
    documented = set(re.findall(r"^([a-zA-Z_-]+):.*## ", text, flags=re.M))
    assert {
        "tf-fmt",
        "tf-init",
        "tf-validate",
        "checkov-env",
        "checkov",
        "tf-check",
        "docker-test",
        "docker-run",
        "deploy",
    } <= documented
    assert re.search(r"^deploy: package\b", text, flags=re.M), "deploy must build the package first"


def make_dry_run(*args: str) -> list[str]:
    """The commands `make -n <args>` would run in the checkout (recursive makes included)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make not on PATH")
    result = subprocess.run(
        [make, "--no-print-directory", "-n", *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


@pytest.mark.integration  # make in a subprocess
def test_make_test_validates_terraform_and_scans_it_once() -> None:
    commands = make_dry_run("test")
    terraform = [c for c in commands if c.startswith("terraform ")]
    build = make_dry_run("package")[-1]  # the package recipe's own command
    package = commands.index(build)
    validate = next(i for i, c in enumerate(commands) if re.search(r"^terraform .*\bvalidate\b", c))
    assert package < validate, "validate hashes dist/: make package must run first"
    assert any(re.search(r"\bfmt -check\b", c) for c in terraform), terraform
    assert any(re.search(r"\binit -backend=false\b", c) for c in terraform), terraform
    # checkov runs once, inside pytest (test_checkov_reports_no_failed_checks), not also in tf-check.
    assert not [c for c in commands if re.search(r"/bin/checkov -d\b", c)], commands
    assert any("pytest" in c for c in commands[validate:]), commands


@pytest.mark.integration  # make in a subprocess
@pytest.mark.parametrize("mirror", ["existing", "missing", "unset"])
def test_terraform_init_uses_the_provider_mirror_only_when_it_exists(mirror: str, tmp_path: Path) -> None:
    plugin_dir = {"existing": str(tmp_path), "missing": str(tmp_path / "no-such-mirror"), "unset": ""}[mirror]
    expected = [f"-plugin-dir={tmp_path}"] if mirror == "existing" else []
    for target in ("tf-init", "tf-plan", "deploy"):
        inits = [c for c in make_dry_run(target, f"TF_PLUGIN_DIR={plugin_dir}") if re.search(r"\binit\b", c)]
        assert len(inits) == 1, (target, inits)
        assert [f for f in inits[0].split() if f.startswith("-plugin-dir")] == expected, (target, inits[0])


@pytest.mark.integration  # checkov
def test_checkov_reports_no_failed_checks() -> None:
    if not CHECKOV.exists():
        pytest.fail(
            f"checkov not found at {CHECKOV}: run `make checkov-env` (checkov lives in its own virtualenv "
            "because it pins an old boto3)"
        )
    result = subprocess.run(
        [
            str(CHECKOV),
            "-d",
            str(TF_DIR),
            "--framework",
            "terraform",
            "--skip-download",
            "--quiet",
            "--compact",
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(
            f"checkov did not print a JSON report (exit {result.returncode}):\n"
            f"{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
        )
    reports = report if isinstance(report, list) else [report]
    summary = {key: sum(r["summary"][key] for r in reports) for key in ("passed", "failed", "parsing_errors")}
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}:{c['file_line_range'][0]}): {c['check_name']}"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]
    assert summary["parsing_errors"] == 0, report
    assert summary["failed"] == 0, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["passed"] > 100, f"checkov checked suspiciously little: {summary}"
    for r in reports:
        for check in r.get("results", {}).get("skipped_checks", []):
            reason = (check.get("check_result") or {}).get("suppress_comment", "")
            assert len(reason.strip()) > 20, (
                f"{check['check_id']} on {check['resource']} is skipped without a reason"
            )


# ---------------------------------------------------------------------------------------------
# References: the part of `terraform validate` that needs no provider schema
# ---------------------------------------------------------------------------------------------


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_every_reference_points_at_something_defined() -> None:
    everything = stack()
    expressions = [s for s in _strings(everything) if "${" in s]
    problems = set()
    for text in expressions:
        for kind, rtype, name in re.findall(r"\b(data\.)?(aws_[a-z0-9_]+)\.([a-z0-9_]+)\b", text):
            bucket = everything["data" if kind else "resource"]
            if name not in bucket.get(rtype, {}):
                problems.add(f"{kind}{rtype}.{name}")
        for name in re.findall(r"\blocal\.(\w+)", text):
            if name not in everything["locals"]:
                problems.add(f"local.{name}")
        for name in re.findall(r"\bvar\.(\w+)", text):
            if name not in everything["variable"]:
                problems.add(f"var.{name}")
    assert not problems, f"undefined references: {sorted(problems)}"


def test_every_variable_is_used() -> None:
    text = "\n".join(raw_files().values())
    unused = [name for name in stack()["variable"] if not re.search(rf"\bvar\.{name}\b", text)]
    assert not unused, f"variables nobody reads: {unused}"
