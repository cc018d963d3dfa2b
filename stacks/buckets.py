"""A private, encrypted, versioned, logged S3 bucket with lifecycle rules: the one way buckets are made."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket
from cdktf_cdktf_provider_aws.s3_bucket_lifecycle_configuration import (
    S3BucketLifecycleConfiguration,
    S3BucketLifecycleConfigurationRule,
    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload,
    S3BucketLifecycleConfigurationRuleExpiration,
    S3BucketLifecycleConfigurationRuleFilter,
    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration,
    S3BucketLifecycleConfigurationRuleTransition,
)
from cdktf_cdktf_provider_aws.s3_bucket_logging import S3BucketLoggingA
from cdktf_cdktf_provider_aws.s3_bucket_ownership_controls import (
    S3BucketOwnershipControls,
    S3BucketOwnershipControlsRule,
)
from cdktf_cdktf_provider_aws.s3_bucket_policy import S3BucketPolicy
from cdktf_cdktf_provider_aws.s3_bucket_public_access_block import S3BucketPublicAccessBlock
from cdktf_cdktf_provider_aws.s3_bucket_server_side_encryption_configuration import (
    S3BucketServerSideEncryptionConfigurationA,
    S3BucketServerSideEncryptionConfigurationRuleA,
    S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA,
)
from cdktf_cdktf_provider_aws.s3_bucket_versioning import (
    S3BucketVersioningA,
    S3BucketVersioningVersioningConfiguration,
)
from constructs import Construct

from stacks.iam import Statement, deny_insecure_transport, policy_document


@dataclass(frozen=True)
class Transition:
    days: int
    storage_class: str


@dataclass(frozen=True)
class SecureBucketProps:
    """Props of :class:`SecureBucket`. Every optional field documents its default."""

    name: str
    """Bucket name, from the naming helper."""
    production: bool
    """Production buckets get ``prevent_destroy``; others ``force_destroy`` so test stacks clean up."""
    kms_key_arn: str | None
    """SSE-KMS key (with a bucket key). ``None`` means SSE-S3: only for the access-log bucket, since
    S3 server access logging cannot deliver to an SSE-KMS bucket."""
    noncurrent_version_days: int
    """Days before noncurrent versions are deleted."""
    access_log_bucket: SecureBucket | None = None
    """Bucket receiving this bucket's server access logs; ``None`` only for the log bucket itself."""
    expiration_days: int | None = None
    """Delete current objects after this many days; default ``None`` keeps them."""
    transitions: Sequence[Transition] = field(default_factory=tuple)
    """Storage class transitions of current objects; default none."""
    extra_statements: Sequence[Statement] = field(default_factory=tuple)
    """Statements added to the bucket policy after the TLS-only statement; default none."""
    receives_access_logs: bool = False
    """Allow the S3 logging service to write here (the log bucket); default ``False``."""
    source_account: str | None = None
    """Account whose buckets may log here (with ``receives_access_logs``)."""

    def __post_init__(self) -> None:
        if self.kms_key_arn is None and not self.receives_access_logs:
            raise ValueError(f"bucket {self.name}: only the access-log bucket may use SSE-S3")
        if self.access_log_bucket is None and not self.receives_access_logs:
            raise ValueError(f"bucket {self.name}: access_log_bucket is required")
        if self.receives_access_logs and self.source_account is None:
            raise ValueError(f"bucket {self.name}: receives_access_logs needs source_account")


class SecureBucket(Construct):
    """Bucket + ownership + versioning + encryption + public access block + TLS policy + lifecycle + logging."""

    def __init__(self, scope: Construct, id_: str, props: SecureBucketProps) -> None:
        super().__init__(scope, id_)
        self.bucket = S3Bucket(
            self,
            "bucket",
            bucket=props.name,
            force_destroy=not props.production,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True) if props.production else None,
        )
        bucket_id = self.bucket.id
        S3BucketOwnershipControls(
            self,
            "ownership",
            bucket=bucket_id,
            rule=S3BucketOwnershipControlsRule(object_ownership="BucketOwnerEnforced"),
        )
        self.public_access_block = S3BucketPublicAccessBlock(
            self,
            "public-access-block",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        )
        S3BucketVersioningA(
            self,
            "versioning",
            bucket=bucket_id,
            versioning_configuration=S3BucketVersioningVersioningConfiguration(status="Enabled"),
        )
        default = S3BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultA(
            sse_algorithm="aws:kms" if props.kms_key_arn else "AES256",
            kms_master_key_id=props.kms_key_arn,
        )
        S3BucketServerSideEncryptionConfigurationA(
            self,
            "encryption",
            bucket=bucket_id,
            rule=[
                S3BucketServerSideEncryptionConfigurationRuleA(
                    apply_server_side_encryption_by_default=default,
                    bucket_key_enabled=bool(props.kms_key_arn),
                )
            ],
        )
        statements = [deny_insecure_transport([self.bucket.arn, f"{self.bucket.arn}/*"])]
        if props.receives_access_logs:
            statements.append(
                Statement(
                    sid="AllowS3ServerAccessLogs",
                    actions=["s3:PutObject"],
                    resources=[f"{self.bucket.arn}/*"],
                    principals={"Service": ["logging.s3.amazonaws.com"]},
                    conditions={("StringEquals", "aws:SourceAccount"): [props.source_account or ""]},
                )
            )
        statements.extend(props.extra_statements)
        policy = policy_document(self, "policy-document", statements)
        self.policy = S3BucketPolicy(
            self, "policy", bucket=bucket_id, policy=policy.json, depends_on=[self.public_access_block]
        )
        self._lifecycle(props, bucket_id)
        if props.access_log_bucket is not None:
            # S3 checks that the target's policy lets the logging service write before it accepts this.
            S3BucketLoggingA(
                self,
                "logging",
                bucket=bucket_id,
                target_bucket=props.access_log_bucket.bucket_id,
                target_prefix=f"{props.name}/",
                depends_on=[props.access_log_bucket.policy],
            )

    def _lifecycle(self, props: SecureBucketProps, bucket_id: str) -> None:
        rules = [
            S3BucketLifecycleConfigurationRule(
                id="abort-incomplete-uploads-and-old-versions",
                status="Enabled",
                filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                abort_incomplete_multipart_upload=[
                    S3BucketLifecycleConfigurationRuleAbortIncompleteMultipartUpload(days_after_initiation=7)
                ],
                noncurrent_version_expiration=[
                    S3BucketLifecycleConfigurationRuleNoncurrentVersionExpiration(
                        noncurrent_days=props.noncurrent_version_days
                    )
                ],
            )
        ]
        if props.expiration_days is not None or props.transitions:
            rules.append(
                S3BucketLifecycleConfigurationRule(
                    id="current-objects",
                    status="Enabled",
                    filter=[S3BucketLifecycleConfigurationRuleFilter(prefix="")],
                    transition=[
                        S3BucketLifecycleConfigurationRuleTransition(days=t.days, storage_class=t.storage_class)
                        for t in props.transitions
                    ]
                    or None,
                    expiration=[S3BucketLifecycleConfigurationRuleExpiration(days=props.expiration_days)]
                    if props.expiration_days is not None
                    else None,
                )
            )
        S3BucketLifecycleConfiguration(self, "lifecycle", bucket=bucket_id, rule=rules)

    @property
    def name(self) -> str:
        return self.bucket.bucket

    @property
    def arn(self) -> str:
        return self.bucket.arn

    @property
    def bucket_id(self) -> str:
        return self.bucket.id
