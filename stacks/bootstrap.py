"""The state bootstrap stack: creates the bucket every environment keeps its Terraform state in.

It keeps its own state locally, in ``terraform.tap-state-bootstrap.tfstate`` in the project folder (it
cannot live in the bucket it creates). Apply it once per account, before the first environment.
"""

from __future__ import annotations

from cdktf import LocalBackend, Op, Precondition, TerraformOutput, TerraformResourceLifecycle, TerraformStack
from cdktf_cdktf_provider_aws.data_aws_caller_identity import DataAwsCallerIdentity
from cdktf_cdktf_provider_aws.data_aws_partition import DataAwsPartition
from cdktf_cdktf_provider_aws.kms_alias import KmsAlias
from cdktf_cdktf_provider_aws.kms_key import KmsKey
from cdktf_cdktf_provider_aws.provider import AwsProvider, AwsProviderDefaultTags
from constructs import Construct

from stacks.buckets import SecureBucket, SecureBucketProps
from stacks.config import PLACEHOLDER_ACCOUNT_ID, STATE_KEY_ALIAS, StateConfig
from stacks.iam import Statement, policy_document
from stacks.security import KEY_ADMIN_ACTIONS, KEY_USE_ACTIONS
from stacks.tap_stack import default_tags

NONCURRENT_STATE_VERSION_DAYS = 90


def same_account(caller_account: str, state: StateConfig) -> list[Precondition]:
    """When the bucket name carries an account id, the apply stops unless it is the caller's: the
    placeholder (``TF_STATE_ACCOUNT_ID`` unset) or another account's name is never created."""
    if state.account_id is None:
        return []
    hint = "export TF_STATE_ACCOUNT_ID=<your 12-digit account id> (or TF_STATE_BUCKET=<a bucket of your own>)"
    if state.account_id == PLACEHOLDER_ACCOUNT_ID:
        message = f"TF_STATE_ACCOUNT_ID is not set: the state bucket name carries no account. {hint}"
    else:
        message = f"the state bucket name carries account {state.account_id}, not the caller's. {hint}"
    return [Precondition(condition=Op.eq(caller_account, state.account_id), error_message=message)]


class StateBootstrapStack(TerraformStack):
    """Versioned, KMS-encrypted, private, TLS-only state bucket (and its access-log bucket)."""

    def __init__(self, scope: Construct, id_: str, state: StateConfig) -> None:
        super().__init__(scope, id_)
        # Relative to cdktf.out/stacks/<stack>: the state file lives in the project folder, outside the
        # synth output that main.py replaces on every run.
        LocalBackend(self, path=f"../../../terraform.{id_}.tfstate")
        AwsProvider(self, "aws", region=state.region, default_tags=[AwsProviderDefaultTags(tags=default_tags("state"))])
        account_id = DataAwsCallerIdentity(self, "current").account_id
        partition = DataAwsPartition(self, "partition").partition
        root = f"arn:{partition}:iam::{account_id}:root"
        key_policy = policy_document(
            self,
            "state-key-policy",
            [
                Statement("AccountAdministersKey", KEY_ADMIN_ACTIONS, ["*"], principals={"AWS": [root]}),
                Statement(
                    "UseThroughS3",
                    KEY_USE_ACTIONS,
                    ["*"],
                    {
                        ("StringEquals", "kms:CallerAccount"): [account_id],
                        ("StringEquals", "kms:ViaService"): [f"s3.{state.region}.amazonaws.com"],
                    },
                    principals={"AWS": [root]},
                ),
            ],
        )
        key = KmsKey(
            self,
            "state-key",
            description="Encrypts the traffic analytics platform's Terraform state",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=key_policy.json,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True, precondition=same_account(account_id, state)),
        )
        KmsAlias(self, "state-key-alias", name=STATE_KEY_ALIAS, target_key_id=key.key_id)
        logs = SecureBucket(
            self,
            "state-access-logs",
            SecureBucketProps(
                name=state.access_log_bucket,
                production=True,
                kms_key_arn=None,
                noncurrent_version_days=NONCURRENT_STATE_VERSION_DAYS,
                expiration_days=365,
                receives_access_logs=True,
                source_account=account_id,
            ),
        )
        bucket = SecureBucket(
            self,
            "state",
            SecureBucketProps(
                name=state.bucket,
                production=True,
                kms_key_arn=key.arn,
                noncurrent_version_days=NONCURRENT_STATE_VERSION_DAYS,
                access_log_bucket=logs,
            ),
        )
        TerraformOutput(self, "state_bucket_name", value=bucket.name, description="Terraform state bucket")
        TerraformOutput(self, "state_kms_key_arn", value=key.arn, description="Key encrypting the state")
