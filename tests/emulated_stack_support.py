"""The whole Terraform stack applied to an emulated AWS account, for tests/test_emulated_stack.py.

`applied_stack(folder)` starts moto in server mode over TLS with IAM enforced (tests/moto_account.py),
copies terraform/ into `folder`, adds two override files there (never into terraform/): the
provider's endpoints, and tests/emulated_aws/moto_emulation_override.tf (one override per difference
between moto and AWS, docs/deploying.md "Tested against an emulated AWS account"), builds the
artefacts with `make package`, and runs `terraform init`, `plan`, then `apply` of the whole stack,
signed by an IAM user the emulated account checks. tests/test_emulated_stack.py reads it back.

About a minute of the apply is the AWS provider waiting: after each
`aws_s3_bucket_lifecycle_configuration` it polls every 5 s until it has read the same rules ten
times in a row (10 s + 10 x 5 s, whatever the server), using no CPU. Building the stack ahead, in
pytest's controller from the session's start, was tried (2026-12-03) and measured no faster: while
one worker waits, the other worker's JVM uses both cores (pytest 500 s ahead, 505 s in the worker).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto_account import EmulatedAccount, Keys, emulated_account

ROOT = Path(__file__).resolve().parents[1]
TF_DIR = ROOT / "terraform"
EMULATION_OVERRIDE = Path(__file__).resolve().parent / "emulated_aws" / "moto_emulation_override.tf"
TERRAFORM = shutil.which("terraform")
TF_TIMEOUT_S = 300
APPLY_TIMEOUT_S = 300
# Errors moto gives now and then to an apply that succeeds when repeated (seen once each in about ten
# applies): Glue's CreateConnection answering AlreadyExistsException for the connection it is
# creating, EC2's RevokeSecurityGroupEgress answering InvalidPermission.NotFound for the default
# security group's default egress rule. The apply is repeated once if it failed with one of them.
INTERMITTENT_MOTO_FAULTS = ("AlreadyExistsException", "InvalidPermission.NotFound")

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

    def state_resource(self, address: str) -> dict[str, Any]:
        for r in self.state["values"]["root_module"]["resources"]:
            if r["mode"] == "managed" and r["address"] == address:
                return dict(r["values"])
        raise AssertionError(f"{address} is not in the state")

    def client(self, service: str, keys: Keys | None = None) -> Any:
        return self.account.client(service, keys)

    def summary(self) -> str:
        planned, applied = self.planned(), set(self.applied())
        return (
            f"emulated account accepted {len(applied & set(planned))} of {len(planned)} planned resources "
            f"(apply exit {self.apply_returncode}); seconds: "
            + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items())
        )


def provider_override(endpoint: str) -> str:
    lines = "\n".join(f'    {service:<14} = "{endpoint}"' for service in SERVICES)
    return f"""# Written by tests/emulated_stack_support.py into a temporary copy of terraform/: every service the
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


def terraform_env(account: EmulatedAccount) -> dict[str, str]:
    env = account.tool_env() | {"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    env.pop("TF_CLI_ARGS", None)
    return env


def _apply(account: EmulatedAccount, folder: Path, seconds: dict[str, float]) -> Stack:
    assert TERRAFORM is not None  # the fixture fails first, naming it
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
    env = terraform_env(account)
    t = time.monotonic()
    run_terraform(["init", "-backend=false", "-input=false", "-no-color", *plugin_dir_flags()], work, env)
    seconds["init"] = time.monotonic() - t
    t = time.monotonic()
    run_terraform(
        ["plan", "-input=false", "-no-color", "-var-file=terraform.tfvars.example", "-out=emulated.tfplan"],
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
            try:
                apply_returncode = apply.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(apply.pid, signal.SIGKILL)
                apply_returncode = apply.wait(10)
    seconds["apply"] = time.monotonic() - t
    output = apply_log.read_text("utf-8")
    state = json.loads(run_terraform(["show", "-json"], work, env))
    # The count is reported even when the apply failed; test_every_planned_resource_is_accepted fails then.
    return Stack(account, folder, dist, plan, state, seconds, apply_returncode, output)


@contextlib.contextmanager
def applied_stack(folder: Path) -> Iterator[Stack]:
    """The emulated account with the whole stack applied; its server stops on exit.

    An apply that fails with one of moto's intermittent faults is made once more from the start, in
    a fresh account (folder/again), not over the state it left: after AlreadyExistsException that
    state may lack a connection moto did create. The output the tests show then says so, and the
    seconds printed with the count include `first attempt`.
    """
    seconds: dict[str, float] = {}
    first = ""  # the first attempt's output, when it met an intermittent fault
    for attempt in (folder, folder / "again"):
        started = time.monotonic()
        with emulated_account(attempt / "account") as account:
            seconds["server"] = time.monotonic() - started
            stack = _apply(account, attempt, seconds)
            known = [fault for fault in INTERMITTENT_MOTO_FAULTS if fault in stack.apply_output]
            if stack.apply_returncode == 0 or not known or first:
                if first:
                    stack.apply_output = (
                        f"{first}\n--- the apply in a fresh account ---\n{stack.apply_output}"
                    )
                yield stack
                return
        first = (
            f"--- moto's intermittent {', '.join(known)} failed the first apply (its output ends"
            f" here); applied again in a fresh account ---\n{stack.apply_output[-3000:]}"
        )
        seconds = {"first attempt": time.monotonic() - started}
