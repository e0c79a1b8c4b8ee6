"""The whole Terraform stack applied to an emulated AWS account, read back, and its least privilege.

One module fixture (`stack`): moto in server mode over TLS with IAM enforced (tests/moto_account.py)
and `terraform init`, `plan`, then `apply` of the whole stack into it, signed by an IAM user the
emulated account checks (tests/emulated_stack_support.py, with the two override files it adds to a
temporary copy of terraform/).

The tests then read the account back with boto3 and assert on the API objects: workflow and
triggers, jobs and the bytes of their code, the job arguments through the Glue seam, the failure
rule's pattern, alerting, Athena, the catalog, the KMS key policy. The real policies that the
emulated run overrides are checked on their own, from the state (their data sources are not
overridden). Last, the deployed Glue role is assumed and every AWS call the jobs make is made with
its credentials, through the project's own code where there is some (S3 `Storage`, the secrets
reader), and calls outside its policy are shown refused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from emulated_stack_support import (
    ROOT,
    TERRAFORM,
    TF_TIMEOUT_S,
    Stack,
    applied_stack,
    terraform_env,
)
from moto_account import ACCOUNT_ID, REGION, Keys

from shared.config import Settings
from shared.contract.source import SOURCE_TABLES
from shared.jobs.freshness import FRESHNESS_LIMIT_MINUTES, METRIC_NAME, TableFreshness, freshness_metrics
from shared.lake.storage import S3Storage
from shared.runtime.glue import (
    METRIC_NAMESPACE,
    GlueJobContext,
    secrets_manager_reader,
    settings_from_glue_args,
)

pytestmark = pytest.mark.integration

DEPLOYING = ROOT / "docs" / "deploying.md"

PREFIX = "totes"  # name_prefix in terraform.tfvars.example
JOBS = ("extract", "transform", "load")
SCHEDULE = "cron(0/20 * * * ? *)"


SECRETS = {
    "totesys": {
        "host": "totesys.example.internal",
        "port": 5432,
        "dbname": "totesys",
        "username": "reader",
        "password": "pw-t",
    },
    "warehouse": {
        "host": "warehouse.example.internal",
        "port": "6543",
        "dbname": "dw",
        "username": "loader",
        "password": "pw-w",
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if TERRAFORM is None:
        pytest.fail("terraform binary not on PATH: make test needs it (it validates and applies the stack)")
    with applied_stack(tmp_path_factory.mktemp("emulated-stack")) as built:
        print(f"\n{built.summary()}")
        yield built


# ---------------------------------------------------------------------------------------------
# The emulated account itself
# ---------------------------------------------------------------------------------------------


def test_emulated_account_verifies_tls_and_enforces_iam(stack: Stack) -> None:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import SSLError

    # TLS is verified for real: a client that trusts only the system's CAs refuses the server.
    untrusting = boto3.client(
        "sts",
        region_name=REGION,
        endpoint_url=stack.account.endpoint,
        aws_access_key_id=stack.account.admin.access_key_id,
        aws_secret_access_key=stack.account.admin.secret_access_key,
        config=Config(retries={"max_attempts": 1}),
        verify=True,
    )
    with pytest.raises(SSLError):
        untrusting.get_caller_identity()
    # IAM is enforced: unknown keys, and a wrong secret for a known key, are refused.
    with pytest.raises(ClientError, match="InvalidClientTokenId"):
        stack.client("iam", Keys("AKIANOTAREALKEY", "nope")).list_users()
    with pytest.raises(ClientError, match="SignatureDoesNotMatch"):
        stack.client("iam", Keys(stack.account.admin.access_key_id, "wrong-secret")).list_users()
    assert (
        stack.client("sts").get_caller_identity()["Arn"]
        == f"arn:aws:iam::{ACCOUNT_ID}:user/emulated-deployer"
    )


def documented_accepted_count() -> int:
    """The floor docs/deploying.md states ("The emulated account accepted **N** planned resources")."""
    text = DEPLOYING.read_text(encoding="utf-8")
    m = re.search(r"accepted \*\*(\d+)\*\* planned resources", text)
    assert m, "docs/deploying.md must state how many planned resources the emulated account accepts"
    return int(m.group(1))


def test_every_planned_resource_is_accepted(stack: Stack) -> None:
    planned, applied = stack.planned(), set(stack.applied())
    accepted = [a for a in planned if a in applied]
    missing = [a for a in planned if a not in applied]
    floor = documented_accepted_count()
    print(f"\naccepted {len(accepted)} of {len(planned)} planned resources; not accepted: {missing}")
    assert len(planned) >= floor
    assert len(accepted) >= floor, (
        f"the emulated account accepted {len(accepted)} planned resources, docs/deploying.md states {floor}; "
        f"not accepted: {missing}\n{stack.apply_output[-6000:]}"
    )
    assert not missing, f"not accepted: {missing}\n{stack.apply_output[-6000:]}"
    assert stack.apply_returncode == 0, stack.apply_output[-6000:]


def test_a_second_plan_changes_nothing(stack: Stack) -> None:
    """Applying the deployed stack again is a no-op: nothing terraform/ sets reads back differently
    (here as moto reads it back, with the one difference the emulation override ignores). Runs
    before the tests below, which add to the account but change nothing terraform manages."""
    assert stack.apply_returncode == 0, stack.apply_output[-6000:]
    assert TERRAFORM is not None
    plan = subprocess.run(
        [
            TERRAFORM,
            "plan",
            "-detailed-exitcode",
            "-input=false",
            "-no-color",
            "-var-file=terraform.tfvars.example",
        ],
        cwd=stack.folder / "stack" / "terraform",
        env=terraform_env(stack.account),
        capture_output=True,
        text=True,
        timeout=TF_TIMEOUT_S,
    )
    changes = [
        line.strip() for line in plan.stdout.splitlines() if " will be " in line or " must be " in line
    ]
    assert plan.returncode == 0, (
        f"exit {plan.returncode}: {changes}\n{plan.stdout[-4000:]}{plan.stderr[-2000:]}"
    )


# ---------------------------------------------------------------------------------------------
# Read back: the workflow, the jobs and their code, the job arguments through the Glue seam
# ---------------------------------------------------------------------------------------------


def tfvar(stack: Stack, name: str) -> Any:
    """The value a variable had in the plan (the example tfvars, else the variable's default)."""
    return stack.plan["variables"][name]["value"]


def s3_bytes(stack: Stack, location: str, keys: Keys | None = None) -> bytes:
    bucket, _, key = location.removeprefix("s3://").partition("/")
    return bytes(stack.client("s3", keys).get_object(Bucket=bucket, Key=key)["Body"].read())


def test_workflow_starts_extract_every_20_minutes_and_chains_on_success(stack: Stack) -> None:
    glue = stack.client("glue")
    workflow = glue.get_workflow(Name=f"{PREFIX}-etl")["Workflow"]
    assert workflow["MaxConcurrentRuns"] == 1
    triggers = [t for t in glue.get_triggers()["Triggers"] if t.get("WorkflowName") == f"{PREFIX}-etl"]
    assert len(triggers) == 3, [t["Name"] for t in triggers]

    (scheduled,) = [t for t in triggers if t["Type"] == "SCHEDULED"]
    assert scheduled["Schedule"] == SCHEDULE
    assert scheduled["Actions"] == [{"JobName": f"{PREFIX}-extract"}]
    assert scheduled["State"] == ("ACTIVATED" if tfvar(stack, "schedule_enabled") else "DEACTIVATED")

    # Follow the chain from the schedule: each step starts exactly the next, only on SUCCEEDED.
    conditional = {t["Name"]: t for t in triggers if t["Type"] == "CONDITIONAL"}
    chain, job = ["extract"], f"{PREFIX}-extract"
    while True:
        after = [
            t
            for t in conditional.values()
            if any(c.get("JobName") == job for c in t["Predicate"]["Conditions"])
        ]
        if not after:
            break
        (trigger,) = after
        assert trigger["Predicate"]["Logical"] == "AND"
        assert trigger["Predicate"]["Conditions"] == [
            {"JobName": job, "LogicalOperator": "EQUALS", "State": "SUCCEEDED"}
        ]
        (action,) = trigger["Actions"]
        job = action["JobName"]
        chain.append(job.removeprefix(f"{PREFIX}-"))
    assert chain == list(JOBS)


@pytest.mark.parametrize("step", JOBS)
def test_job_definition_and_the_code_it_runs(stack: Stack, step: str) -> None:
    job = stack.client("glue").get_job(JobName=f"{PREFIX}-{step}")["Job"]
    assert job["GlueVersion"] == "5.0"
    assert job["WorkerType"] == tfvar(stack, "worker_type") == "G.1X"
    assert job["NumberOfWorkers"] == tfvar(stack, "number_of_workers") == 2
    assert job["Timeout"] == tfvar(stack, f"{step}_timeout_minutes")
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    assert job["Role"] == stack.outputs["glue_role_arn"]
    assert job["Connections"] == {"Connections": [f"{PREFIX}-totesys", f"{PREFIX}-warehouse"]}
    assert job["Command"]["Name"] == "glueetl"
    scripts = stack.outputs["scripts_bucket"]
    assert job["Command"]["ScriptLocation"] == f"s3://{scripts}/glue_jobs/{step}.py"
    # The uploaded objects hold exactly the bytes `make package` built.
    assert (
        s3_bytes(stack, job["Command"]["ScriptLocation"])
        == (stack.dist / "glue_jobs" / f"{step}.py").read_bytes()
    )
    arguments = job["DefaultArguments"]
    assert arguments["--extra-py-files"] == f"s3://{scripts}/lib/shared.zip"
    assert s3_bytes(stack, arguments["--extra-py-files"]) == (stack.dist / "shared.zip").read_bytes()
    # The RDS CA bundle (--extra-files): the object holds the bundle `make package` copied.
    assert arguments["--extra-files"] == f"s3://{scripts}/lib/rds-global-bundle.pem"
    bundle = (stack.dist / "rds-global-bundle.pem").read_bytes()
    assert bundle.startswith(b"-----BEGIN CERTIFICATE-----")
    assert s3_bytes(stack, arguments["--extra-files"]) == bundle
    for connection in job["Connections"]["Connections"]:
        properties = stack.client("glue").get_connection(Name=connection)["Connection"][
            "ConnectionProperties"
        ]
        assert properties["SECRET_ID"] == f"{PREFIX}/{connection.removeprefix(f'{PREFIX}-')}"


def put_database_secrets(stack: Stack) -> None:
    secrets = stack.client("secretsmanager")
    for name, document in SECRETS.items():
        secrets.put_secret_value(
            SecretId=stack.outputs[f"{name}_secret_arn"], SecretString=json.dumps(document)
        )


def glue_args(job: dict[str, Any]) -> dict[str, str]:
    """What getResolvedOptions gives the script: the job's DefaultArguments without '--', plus JOB_NAME."""
    return {k.removeprefix("--"): v for k, v in job["DefaultArguments"].items()} | {"JOB_NAME": job["Name"]}


@pytest.mark.parametrize("step", JOBS)
def test_job_arguments_and_the_emulated_secrets_make_a_valid_configuration(stack: Stack, step: str) -> None:
    put_database_secrets(stack)
    job = stack.client("glue").get_job(JobName=f"{PREFIX}-{step}")["Job"]
    settings = settings_from_glue_args(glue_args(job), secrets_manager_reader(stack.client("secretsmanager")))
    assert settings.lake_root.rstrip("/") == f"s3://{stack.outputs['processed_bucket']}"
    assert settings.ingestion == f"s3://{stack.outputs['ingestion_bucket']}"
    assert settings.catalog_database == stack.outputs["catalog_database"] == "totes"
    assert settings.lookback_minutes == tfvar(stack, "lookback_minutes")
    for name, url in (("totesys", settings.totesys), ("warehouse", settings.warehouse)):
        document = SECRETS[name]
        assert url is not None
        assert (url.host, url.port, url.database, url.user, url.password) == (
            document["host"],
            int(document["port"]),
            document["dbname"],
            document["username"],
            document["password"],
        )


def test_catalog_database(stack: Stack) -> None:
    database = stack.client("glue").get_database(Name="totes")["Database"]
    assert database["LocationUri"] == f"s3://{stack.outputs['processed_bucket']}/processed/"


# ---------------------------------------------------------------------------------------------
# Alerting: the failure rule, the topic and its subscription, every alarm
# ---------------------------------------------------------------------------------------------


def glue_job_state_change(job: str, state: str) -> dict[str, Any]:
    """A "Glue Job State Change" event as EventBridge delivers it (AWS Glue's documented sample)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Glue Job State Change",
        "source": "aws.glue",
        "account": ACCOUNT_ID,
        "time": "2026-12-01T10:00:00Z",
        "region": REGION,
        "resources": [],
        "detail": {
            "jobName": job,
            "severity": "INFO" if state in ("SUCCEEDED", "STOPPED") else "ERROR",
            "state": state,
            "jobRunId": "jr_0123456789abcdef",
            "message": f"Job run {state.lower()}",
        },
    }


def test_failure_rule_matches_failed_timeout_and_stopped_runs_only(stack: Stack) -> None:
    # moto's TestEventPattern answers nothing (see test_moto_differences_still_hold), so the pattern
    # read back from the API is evaluated with moto's own EventBridge matcher, in process.
    from moto.events.models import EventPattern

    events = stack.client("events")
    rule = events.describe_rule(Name=f"{PREFIX}-glue-job-failed")
    assert rule["State"] == "ENABLED"
    pattern = EventPattern.load(rule["EventPattern"])
    for step in JOBS:
        job = f"{PREFIX}-{step}"
        for state in ("FAILED", "TIMEOUT", "STOPPED"):
            assert pattern.matches_event(glue_job_state_change(job, state)), (job, state)
        for state in ("SUCCEEDED", "RUNNING", "STARTING", "STOPPING"):
            assert not pattern.matches_event(glue_job_state_change(job, state)), (job, state)
    assert not pattern.matches_event(glue_job_state_change("someone-elses-job", "FAILED"))
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == stack.outputs["alerts_topic_arn"]
    assert "RoleArn" not in target  # SNS authorises EventBridge by the topic policy, not a role

    # The run history counts the same failures.
    filters = stack.client("logs").describe_metric_filters(
        logGroupName=stack.outputs["job_run_history_log_group"]
    )["metricFilters"]
    (failed,) = [f for f in filters if f["metricTransformations"][0]["metricName"] == "JobRunsFailed"]
    counted = set(re.findall(r'\$\.detail\.state = "(\w+)"', failed["filterPattern"]))
    assert counted == {"FAILED", "TIMEOUT", "STOPPED"}


def test_alerts_topic_subscription_and_every_alarm_action(stack: Stack) -> None:
    topic = stack.outputs["alerts_topic_arn"]
    sns = stack.client("sns")
    (subscription,) = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", tfvar(stack, "alert_email"))
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["KmsMasterKeyId"] == stack.outputs["kms_key_arn"]
    policy = json.loads(attributes["Policy"])
    publishers = {s["Principal"]["Service"]: s for s in policy["Statement"]}
    rule_arn = stack.client("events").describe_rule(Name=f"{PREFIX}-glue-job-failed")["Arn"]
    assert publishers["events.amazonaws.com"]["Condition"] == {"ArnEquals": {"aws:SourceArn": rule_arn}}
    assert set(publishers) == {"events.amazonaws.com", "cloudwatch.amazonaws.com"}

    alarms = stack.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{PREFIX}-")["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in alarms) == sorted(stack.outputs["alarm_names"])
    assert len(alarms) == 5
    for alarm in alarms:
        assert alarm["ActionsEnabled"] is True, alarm["AlarmName"]
        assert alarm["AlarmActions"] == [topic], alarm["AlarmName"]
    (stale,) = [a for a in alarms if a["AlarmName"] == f"{PREFIX}-workflow-stale"]
    assert stale["OKActions"] == [topic]
    assert stale["TreatMissingData"] == "breaching"
    # The freshness alarm watches the overall datapoint the load publishes through the Glue seam.
    (fresh,) = [a for a in alarms if a["AlarmName"] == f"{PREFIX}-freshness"]
    assert (fresh["Namespace"], fresh["MetricName"], fresh.get("Dimensions", [])) == (
        METRIC_NAMESPACE,
        METRIC_NAME,
        [],
    )
    assert (fresh["Statistic"], fresh["Period"], fresh["EvaluationPeriods"]) == ("Maximum", 1800, 1)
    assert (fresh["ComparisonOperator"], fresh["Threshold"]) == (
        "GreaterThanThreshold",
        FRESHNESS_LIMIT_MINUTES,
    )
    assert (fresh["TreatMissingData"], fresh["OKActions"]) == ("breaching", [topic])


def test_athena_workgroup_and_named_queries(stack: Stack) -> None:
    athena = stack.client("athena")
    workgroup = athena.get_work_group(WorkGroup=f"{PREFIX}-analytics")["WorkGroup"]
    configuration = workgroup["Configuration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == tfvar(stack, "athena_bytes_scanned_cutoff")
    results = configuration["ResultConfiguration"]
    assert results["OutputLocation"] == f"s3://{stack.outputs['athena_results_bucket']}/results/"
    assert results["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": stack.outputs["kms_key_arn"],
    }
    ids = athena.list_named_queries(WorkGroup=workgroup["Name"])["NamedQueryIds"]
    # One by one: moto's BatchGetNamedQuery fails (HTTP 500).
    queries = [athena.get_named_query(NamedQueryId=i)["NamedQuery"] for i in ids]
    assert sorted(q["Name"] for q in queries) == sorted(
        f"{PREFIX}-{n}" for n in stack.outputs["athena_named_queries"]
    )
    assert len(queries) == 5
    for query in queries:
        assert query["Database"] == "totes"
        assert query["WorkGroup"] == workgroup["Name"]
        assert "SELECT" in query["QueryString"].upper()


# ---------------------------------------------------------------------------------------------
# The KMS key policy (defect 2): EventBridge can use the alert topic's key
# ---------------------------------------------------------------------------------------------


def key_policy(stack: Stack) -> list[dict[str, Any]]:
    kms = stack.client("kms")
    return list(
        json.loads(kms.get_key_policy(KeyId=stack.outputs["kms_key_arn"], PolicyName="default")["Policy"])[
            "Statement"
        ]
    )


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def service_statements(statements: list[dict[str, Any]], service: str) -> list[dict[str, Any]]:
    return [
        s
        for s in statements
        if s["Effect"] == "Allow" and service in as_list(s.get("Principal", {}).get("Service", []))
    ]


def test_key_policy_lets_eventbridge_encrypt_to_the_alert_topic(stack: Stack) -> None:
    statements = key_policy(stack)
    # As the SNS documentation says for an AWS service that publishes to an encrypted topic:
    # kms:GenerateDataKey* and kms:Decrypt, no aws:SourceAccount / aws:SourceArn condition, which
    # EventBridge does not send on this call (with one, the failure mail would never arrive).
    (events,) = service_statements(statements, "events.amazonaws.com")
    assert set(as_list(events["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert as_list(events["Resource"]) == ["*"]
    assert "Condition" not in events
    assert as_list(events["Principal"]["Service"]) == ["events.amazonaws.com"]
    # CloudWatch alarms keep the confused-deputy condition.
    (alarms,) = service_statements(statements, "cloudwatch.amazonaws.com")
    assert set(as_list(alarms["Action"])) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    assert as_list(alarms["Principal"]["Service"]) == ["cloudwatch.amazonaws.com"]
    # The rest: the account administers the key through IAM; CloudWatch Logs only for this
    # account's log groups.
    (root,) = [s for s in statements if s.get("Principal", {}).get("AWS")]
    assert as_list(root["Principal"]["AWS"]) == [f"arn:aws:iam::{ACCOUNT_ID}:root"]
    (logs,) = service_statements(statements, f"logs.{REGION}.amazonaws.com")
    assert logs["Condition"] == {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:*"}
    }
    assert len(statements) == 4


# ---------------------------------------------------------------------------------------------
# The real policies the emulated run overrides, checked on their own (their data sources are
# evaluated in the copy and kept in the state; only the resources' arguments are overridden)
# ---------------------------------------------------------------------------------------------


def document(stack: Stack, address: str) -> list[dict[str, Any]]:
    return list(json.loads(stack.data_source(address)["json"])["Statement"])


def arn(bucket: str) -> str:
    return f"arn:aws:s3:::{bucket}"


TLS_ONLY = {"Bool": {"aws:SecureTransport": "false"}}


def test_real_bucket_policies_deny_every_request_without_tls(stack: Stack) -> None:
    buckets = stack.outputs["buckets"]
    for role in ("ingestion", "processed", "scripts", "athena"):
        (statement,) = document(stack, f'data.aws_iam_policy_document.tls_only["{role}"]')
        assert statement["Effect"] == "Deny"
        assert statement["Principal"] == "*" and statement["Action"] == "s3:*"
        assert sorted(as_list(statement["Resource"])) == sorted(
            [arn(buckets[role]), f"{arn(buckets[role])}/*"]
        )
        assert statement["Condition"] == TLS_ONLY
        # What the emulated account holds instead (tests/emulated_aws/moto_emulation_override.tf).
        emulated = json.loads(stack.client("s3").get_bucket_policy(Bucket=buckets[role])["Policy"])
        assert [s["Resource"] for s in emulated["Statement"]] == [f"{arn(buckets[role])}/moto-deny-probe/*"]

    statements = {s["Sid"]: s for s in document(stack, "data.aws_iam_policy_document.access_logs")}
    logs = arn(buckets["access_logs"])
    deny = statements["DenyInsecureTransport"]
    assert (deny["Effect"], deny["Principal"], deny["Action"], deny["Condition"]) == (
        "Deny",
        "*",
        "s3:*",
        TLS_ONLY,
    )
    assert sorted(as_list(deny["Resource"])) == sorted([logs, f"{logs}/*"])
    access = statements["S3ServerAccessLogsFromTheStacksBuckets"]
    assert access["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert access["Action"] == "s3:PutObject" and access["Resource"] == f"{logs}/s3/*"
    assert sorted(as_list(access["Condition"]["ArnLike"]["aws:SourceArn"])) == sorted(
        arn(buckets[r]) for r in ("ingestion", "processed", "scripts", "athena")
    )
    assert access["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}
    flow = statements["VpcFlowLogsDelivery"]
    assert flow["Resource"] == f"{logs}/vpc-flow-logs/AWSLogs/{ACCOUNT_ID}/*"


def test_real_trust_policy_lets_only_glue_of_this_account_assume_the_role(stack: Stack) -> None:
    (statement,) = document(stack, "data.aws_iam_policy_document.glue_assume")
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"Service": "glue.amazonaws.com"}
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}
    # The emulated trust (the override) names exactly the caller that ran terraform.
    role = stack.client("iam").get_role(RoleName=stack.outputs["glue_role_arn"].rsplit("/", 1)[1])["Role"]
    trusted = role["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trusted] == [{"AWS": f"arn:aws:iam::{ACCOUNT_ID}:user/emulated-deployer"}]


def test_real_flow_log_destination_is_the_prefix_its_bucket_policy_allows(stack: Stack) -> None:
    # The override replaces the argument, so the real one is read from terraform/ (parsed HCL).
    from test_terraform import resource

    flow = resource("aws_flow_log", "this")
    assert flow["log_destination"] == "${aws_s3_bucket.access_logs.arn}/vpc-flow-logs/"
    assert flow["log_destination_type"] == "s3"
    statements = {s["Sid"]: s for s in document(stack, "data.aws_iam_policy_document.access_logs")}
    # Flow logs write <destination>AWSLogs/<account>/..., which is what the delivery statement allows.
    assert statements["VpcFlowLogsDelivery"]["Resource"].startswith(
        f"{arn(stack.outputs['buckets']['access_logs'])}/vpc-flow-logs/AWSLogs/"
    )


def test_moto_differences_still_hold(stack: Stack) -> None:
    """Each workaround is needed only while moto differs: when one of these fails, drop its override."""
    buckets = stack.outputs["buckets"]
    s3 = stack.client("s3")
    # 1. A bucket policy's Deny applies without its Condition: the TLS-only probe refuses the admin over TLS.
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=buckets["processed"], Key="moto-deny-probe/x", Body=b"x")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    s3.put_object(Bucket=buckets["processed"], Key="outside-the-probe/x", Body=b"x")
    s3.delete_object(Bucket=buckets["processed"], Key="outside-the-probe/x")
    # 2. TestEventPattern answers nothing.
    event = json.dumps(glue_job_state_change(f"{PREFIX}-extract", "FAILED"))
    try:
        answer = stack.client("events").test_event_pattern(
            EventPattern='{"source": ["aws.glue"]}', Event=event
        )
    except ClientError:
        answer = {}
    assert "Result" not in answer, (
        "moto answers TestEventPattern now: use it instead of the in-process matcher"
    )
    # 3. A flow log to an S3 ARN with a prefix is refused.
    vpc = stack.state_resource("aws_vpc.this")["id"]
    answer = stack.client("ec2").create_flow_logs(
        ResourceIds=[vpc],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="s3",
        LogDestination=f"{arn(buckets['access_logs'])}/vpc-flow-logs/",
    )
    assert not answer["FlowLogIds"]
    assert "does not exist" in answer["Unsuccessful"][0]["Error"]["Message"]
    # 4. Conditions of identity policies are not evaluated: the Glue role may put metrics in any
    #    namespace here, though its policy allows only Glue and TotesETL (cloudwatch:namespace).
    role = stack.account.assume_role(stack.outputs["glue_role_arn"], "moto-differences")
    stack.client("cloudwatch", role).put_metric_data(
        Namespace="SomeoneElse", MetricData=[{"MetricName": "Anything", "Value": 1.0}]
    )
    # 5. A trust policy with a Service principal cannot be evaluated: AssumeRole of a role that
    #    holds the real trust policy fails inside moto (HTTP 500) instead of being refused.
    iam = stack.client("iam")
    real_trust = stack.data_source("data.aws_iam_policy_document.glue_assume")["json"]
    probe = iam.create_role(RoleName="moto-probe-service-trust", AssumeRolePolicyDocument=real_trust)["Role"]
    with pytest.raises(ResponseParserError, match="500 Internal Server Error"):  # an HTML error page
        stack.client("sts").assume_role(RoleArn=probe["Arn"], RoleSessionName="probe")
    # 6. BatchGetNamedQuery fails (HTTP 500).
    athena = stack.client("athena")
    ids = athena.list_named_queries(WorkGroup=f"{PREFIX}-analytics")["NamedQueryIds"]
    with pytest.raises(ClientError) as failed:
        athena.batch_get_named_query(NamedQueryIds=ids)
    assert failed.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    # 7. The scoped Glue role can be tested only because the server resolves the resource of
    #    Secrets Manager and KMS requests, names CloudWatch's actions cloudwatch:* and authorises
    #    DeleteObjects per key (tests/moto_account.py, _adjust_moto); without them the role is
    #    refused what its policy allows.
    # 8. GetConnection leaves ConnectionType out (a second plan would set it again, through an
    #    UpdateConnection moto does not have): the override ignores connection_type.
    assert "ConnectionType" not in stack.client("glue").get_connection(Name=f"{PREFIX}-totesys")["Connection"]


# ---------------------------------------------------------------------------------------------
# Least privilege: the deployed Glue role, assumed, makes every AWS call the jobs make
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def glue_role(stack: Stack) -> Keys:
    return stack.account.assume_role(stack.outputs["glue_role_arn"], "least-privilege-test")


def denied(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as refused:
        call(*args, **kwargs)
    error = refused.value.response["Error"]
    # moto answers AccessDenied as XML even to JSON-protocol services, which botocore then
    # reports by its HTTP status: code "403", the XML in the message.
    assert error["Code"] in ("AccessDenied", "AccessDeniedException") or (
        error["Code"] == "403" and "<Code>AccessDenied</Code>" in error.get("Message", "")
    ), error
    return str(error["Code"])


def test_glue_role_reads_both_secrets_and_nothing_else_of_secrets_manager(
    stack: Stack, glue_role: Keys
) -> None:
    put_database_secrets(stack)
    secrets = stack.client("secretsmanager", glue_role)
    job = stack.client("glue").get_job(JobName=f"{PREFIX}-extract")["Job"]
    settings = settings_from_glue_args(glue_args(job), secrets_manager_reader(secrets))
    assert settings.totesys is not None and settings.totesys.password == SECRETS["totesys"]["password"]
    assert settings.warehouse is not None and settings.warehouse.password == SECRETS["warehouse"]["password"]

    other = stack.client("secretsmanager").create_secret(Name="someone-else/login", SecretString="{}")["ARN"]
    denied(secrets.get_secret_value, SecretId=other)
    for name in SECRETS:
        secret = stack.outputs[f"{name}_secret_arn"]
        denied(secrets.delete_secret, SecretId=secret, ForceDeleteWithoutRecovery=True)
        denied(secrets.put_secret_value, SecretId=secret, SecretString="{}")
    denied(secrets.create_secret, Name=f"{PREFIX}/new", SecretString="{}")


def exercise(storage: S3Storage, location: str) -> None:
    """Every Storage operation the jobs use, under `location`: write, read, list, exists, move, delete."""
    storage.write_text(f"{location}/part-00000.json", '{"a": 1}\n')
    assert storage.read_text(f"{location}/part-00000.json") == '{"a": 1}\n'
    assert storage.exists(location)
    assert "part-00000.json" in storage.list_names(location)
    storage.move(f"{location}/part-00000.json", f"{location}/part-00001.json")
    assert storage.list_names(location) == ["part-00001.json"]
    storage.delete(location)
    assert not storage.exists(location)
    assert storage.read_text(f"{location}/part-00001.json") is None


def test_glue_role_uses_the_lake_and_ingestion_zone_through_the_projects_storage(
    stack: Stack, glue_role: Keys
) -> None:
    from shared.lake.layout import LakeLayout

    put_database_secrets(stack)
    job = stack.client("glue").get_job(JobName=f"{PREFIX}-transform")["Job"]
    settings = settings_from_glue_args(glue_args(job), secrets_manager_reader(stack.client("secretsmanager")))
    storage = S3Storage(stack.client("s3", glue_role))
    layout = LakeLayout.of(settings)
    run = "20261201T100000Z-0001"
    # Where the jobs write and read (every path from shared/lake/layout.py).
    for location in (
        layout.ingestion_run("sales_order", run),
        layout.partition(layout.table("fact_sales_order"), 2026, 12),
        layout.version("dim_staff", run),
        layout.quarantine_run("sales_order", run),
        layout.bookmarks,
        layout.runs,
    ):
        exercise(storage, location)
    storage.write_text(layout.manifest(run), "{}")
    storage.write_text(layout.published, "{}")
    assert storage.read_text(layout.manifest(run)) == "{}"
    assert storage.read_text(layout.published) == "{}"


def test_glue_role_reads_its_code_and_writes_only_glues_own_prefixes_of_the_scripts_bucket(
    stack: Stack, glue_role: Keys
) -> None:
    scripts = stack.outputs["scripts_bucket"]
    for step in JOBS:
        job = stack.client("glue").get_job(JobName=f"{PREFIX}-{step}")["Job"]
        assert (
            s3_bytes(stack, job["Command"]["ScriptLocation"], glue_role)
            == (stack.dist / "glue_jobs" / f"{step}.py").read_bytes()
        )
        assert (
            s3_bytes(stack, job["DefaultArguments"]["--extra-py-files"], glue_role)
            == (stack.dist / "shared.zip").read_bytes()
        )
    storage = S3Storage(stack.client("s3", glue_role))
    exercise(storage, f"s3://{scripts}/temp/extract")  # --TempDir
    exercise(storage, f"s3://{scripts}/spark-ui/extract")  # --spark-event-logs-path
    s3 = stack.client("s3", glue_role)
    # The code is read-only to the jobs, and nothing else of the bucket is theirs.
    denied(s3.put_object, Bucket=scripts, Key="lib/shared.zip", Body=b"not the library")
    denied(s3.put_object, Bucket=scripts, Key="glue_jobs/extract.py", Body=b"print('hi')")
    denied(s3.delete_object, Bucket=scripts, Key="lib/shared.zip")
    denied(s3.put_object, Bucket=scripts, Key="elsewhere/x", Body=b"x")
    denied(s3.get_object, Bucket=scripts, Key="elsewhere/x")


def test_glue_role_cannot_touch_other_buckets(stack: Stack, glue_role: Keys) -> None:
    other = f"someone-elses-bucket-{uuid.uuid4().hex[:8]}"
    stack.client("s3").create_bucket(Bucket=other, CreateBucketConfiguration={"LocationConstraint": REGION})
    stack.client("s3").put_object(Bucket=other, Key="data.json", Body=b"{}")
    s3 = stack.client("s3", glue_role)
    buckets = stack.outputs["buckets"]
    for bucket in (other, buckets["athena"], buckets["access_logs"]):
        denied(s3.put_object, Bucket=bucket, Key="x", Body=b"x")
        denied(s3.get_object, Bucket=bucket, Key="data.json")
        denied(s3.list_objects_v2, Bucket=bucket)
    with pytest.raises(ClientError):
        S3Storage(s3).write_text(f"s3://{other}/sales_order/x.json", "{}")
    # Delete markers only: no version of the lake can be destroyed, and no bucket policy changed.
    denied(s3.delete_object, Bucket=buckets["processed"], Key="processed/x", VersionId="v1")
    denied(s3.put_bucket_policy, Bucket=buckets["processed"], Policy="{}")
    denied(s3.delete_bucket, Bucket=buckets["ingestion"])


def test_glue_role_publishes_metrics_and_uses_only_the_stacks_key(stack: Stack, glue_role: Keys) -> None:
    cloudwatch = stack.client("cloudwatch", glue_role)
    for namespace in ("TotesETL", "Glue"):
        cloudwatch.put_metric_data(
            Namespace=namespace, MetricData=[{"MetricName": "RowsQuarantined", "Value": 1.0, "Unit": "Count"}]
        )
    # The load's freshness, published by the Glue job context (the seam) with the role's credentials.
    tables = [
        TableFreshness(t, None, None, "-", None, 40.0 if t == "payment" else 0.0) for t in SOURCE_TABLES
    ]
    settings = Settings(lake_root=f"s3://{stack.outputs['processed_bucket']}")
    storage = S3Storage(stack.client("s3", glue_role))
    load = GlueJobContext("load", None, settings, job=None, storage=storage, cloudwatch=cloudwatch)  # type: ignore[arg-type]
    load.publish_metrics(freshness_metrics(tables))
    listed = stack.client("cloudwatch").list_metrics(Namespace="TotesETL")["Metrics"]
    assert {"Namespace": "TotesETL", "MetricName": "RowsQuarantined", "Dimensions": []} in listed
    assert {"Namespace": METRIC_NAMESPACE, "MetricName": METRIC_NAME, "Dimensions": []} in listed
    assert {
        "Namespace": METRIC_NAMESPACE,
        "MetricName": METRIC_NAME,
        "Dimensions": [{"Name": "Table", "Value": "payment"}],
    } in listed
    # 40 minutes is above the freshness alarm's 30, but moto never evaluates an alarm
    # (docs/deploying.md, "What moto cannot evaluate"): this fails when it starts to.
    (alarm,) = stack.client("cloudwatch").describe_alarms(AlarmNames=[f"{PREFIX}-freshness"])["MetricAlarms"]
    assert alarm["StateValue"] == "OK"
    # The namespace condition is in the policy as read back from IAM (moto does not evaluate it).
    iam = stack.client("iam")
    role = stack.outputs["glue_role_arn"].rsplit("/", 1)[1]
    policy = iam.get_role_policy(RoleName=role, PolicyName=f"{PREFIX}-glue-jobs")["PolicyDocument"]
    statements = {
        s["Sid"]: s for s in (json.loads(policy) if isinstance(policy, str) else policy)["Statement"]
    }
    assert statements["GlueAndEtlMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": ["Glue", "TotesETL"]}
    }

    kms = stack.client("kms", glue_role)
    key = stack.outputs["kms_key_arn"]
    data_key = kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    assert kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]
    other = stack.client("kms").create_key(Description="someone else's key")["KeyMetadata"]["Arn"]
    denied(kms.generate_data_key, KeyId=other, KeySpec="AES_256")
    denied(kms.schedule_key_deletion, KeyId=key, PendingWindowInDays=7)
    denied(kms.put_key_policy, KeyId=key, PolicyName="default", Policy="{}")
    denied(
        stack.client("iam", glue_role).put_role_policy, RoleName=role, PolicyName="more", PolicyDocument="{}"
    )


def test_glue_role_uses_only_its_own_catalog_database_jobs_and_connections(
    stack: Stack, glue_role: Keys
) -> None:
    glue = stack.client("glue", glue_role)
    # What the transform does through Spark's Glue catalog client: CREATE DATABASE IF NOT EXISTS
    # (AlreadyExists is fine), CREATE / ALTER / DROP TABLE, partitions; and the "default" lookup.
    with pytest.raises(ClientError, match="AlreadyExists"):
        glue.create_database(DatabaseInput={"Name": "totes"})
    assert glue.get_database(Name="totes")["Database"]["Name"] == "totes"
    # Spark looks up "default" first: allowed (moto has no such database, so: not found, not denied).
    with pytest.raises(ClientError, match="EntityNotFound"):
        glue.get_database(Name="default")
    table = {
        "Name": "dim_probe",
        "StorageDescriptor": {
            "Columns": [{"Name": "id", "Type": "int"}],
            "Location": f"s3://{stack.outputs['processed_bucket']}/processed/dim_probe/",
        },
        "PartitionKeys": [{"Name": "created_year", "Type": "int"}],
    }
    glue.create_table(DatabaseName="totes", TableInput=table)
    assert glue.get_table(DatabaseName="totes", Name="dim_probe")["Table"]["Name"] == "dim_probe"
    glue.update_table(DatabaseName="totes", TableInput=table | {"Description": "probe"})
    glue.batch_create_partition(
        DatabaseName="totes",
        TableName="dim_probe",
        PartitionInputList=[{"Values": ["2026"], "StorageDescriptor": table["StorageDescriptor"]}],
    )
    assert len(glue.get_partitions(DatabaseName="totes", TableName="dim_probe")["Partitions"]) == 1
    glue.delete_table(DatabaseName="totes", Name="dim_probe")
    for step in JOBS:
        assert glue.get_job(JobName=f"{PREFIX}-{step}")["Job"]["Name"] == f"{PREFIX}-{step}"
    for name in ("totesys", "warehouse"):
        glue.get_connection(Name=f"{PREFIX}-{name}")

    stack.client("glue").create_database(DatabaseInput={"Name": "someone_else"})
    denied(glue.get_database, Name="someone_else")
    denied(glue.create_table, DatabaseName="someone_else", TableInput=table)
    denied(glue.create_database, DatabaseInput={"Name": "another"})
    denied(glue.delete_database, Name="totes")
    denied(
        glue.update_job, JobName=f"{PREFIX}-extract", JobUpdate={"Role": "x", "Command": {"Name": "glueetl"}}
    )
    denied(glue.start_job_run, JobName=f"{PREFIX}-extract")
    denied(glue.delete_job, JobName=f"{PREFIX}-extract")


# ---------------------------------------------------------------------------------------------
# docs/deploying.md "Operating it on AWS": every command the emulated account can answer is run
# ---------------------------------------------------------------------------------------------

# The operations docs/deploying.md shows (commented out) that moto does not implement: each is
# checked to be still unanswered, so this list has to shrink when moto learns one.
UNANSWERED = {
    "reset-job-bookmark": ("reset_job_bookmark", {"JobName": f"{PREFIX}-extract"}),
    "get-job-bookmark": ("get_job_bookmark", {"JobName": f"{PREFIX}-extract"}),
    "resume-workflow-run": (
        "resume_workflow_run",
        {"Name": f"{PREFIX}-etl", "RunId": "wr_0", "NodeIds": ["n"]},
    ),
}


def operating_blocks() -> list[str]:
    """The ```bash blocks of the "Operating it on AWS" part, in order (the first sets the names)."""
    text = DEPLOYING.read_text(encoding="utf-8")
    section = text[text.index("## Operating it on AWS") : text.index("### Teardown")]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def aws_cli_env(stack: Stack) -> dict[str, str]:
    """The AWS CLI of .venv, signed as the admin, sent to the emulated account, trusting our CA."""
    env = stack.account.tool_env()
    env.update(
        AWS_ENDPOINT_URL=stack.account.endpoint,
        AWS_CA_BUNDLE=str(stack.account.ca_bundle),
        AWS_DEFAULT_REGION=REGION,
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def test_every_operating_command_the_emulated_account_answers_runs(stack: Stack) -> None:
    assert shutil.which("aws", path=aws_cli_env(stack)["PATH"]), "the AWS CLI (awscli, dev extra) is missing"
    outputs = stack.outputs
    # What a failed scheduled run leaves: a workflow run, and the library's FAILED run record,
    # written by the Glue job context itself into the processed bucket.
    stack.client("glue").start_workflow_run(Name=outputs["workflow_name"])
    settings = Settings(lake_root=f"s3://{outputs['processed_bucket']}")
    ctx = GlueJobContext("transform", None, settings, job=None, storage=S3Storage(stack.client("s3")))  # type: ignore[arg-type]
    ctx.finish("FAILED", "SourceUnreachable: TOTESYS_SECRET_ID: connection refused")

    preamble, *blocks = operating_blocks()
    assert "terraform -chdir=terraform output" in preamble and len(blocks) >= 3
    ran = []
    for block in blocks:
        script = "set -euo pipefail\n" + preamble + block
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=stack.folder / "stack",
            env=aws_cli_env(stack),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (
            f"{block}\nexit {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
        ran.append(result.stdout)
    shown = "\n".join(ran)
    assert f"{ctx.run_id}-transform.json" in shown  # aws s3 ls of the run records
    assert '"WorkflowRunId"' not in shown and '"status"' in shown  # get-workflow-run's query

    commented = sorted(
        {
            found.group(1)
            for block in operating_blocks()
            for line in block.splitlines()
            if (found := re.match(r"#\s+aws glue (\S+)", line))
        }
    )
    assert commented == sorted(UNANSWERED)
    glue = stack.client("glue")
    for command, (operation, kwargs) in UNANSWERED.items():
        with pytest.raises(ClientError) as refused:
            getattr(glue, operation)(**kwargs)
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] >= 500 or "NotImplemented" in str(
            refused.value
        ), f"moto now answers {command}: run it in this test instead of listing it"
