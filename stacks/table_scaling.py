"""Auto scaling of a provisioned DynamoDB table (issue 20, item 4): one concern, one construct.

Application Auto Scaling tracks each dimension (read and write units) at the environment's
``dynamodb_target_utilisation`` between the minimum and maximum the capacity model sizes from the declared
fleet (``stacks.capacity.provisioned_throughput``). It creates its own CloudWatch alarms and uses the
service-linked role ``AWSServiceRoleForApplicationAutoScaling_DynamoDBTable`` (created on the first
``RegisterScalableTarget`` of the account: the deploy role may create exactly that role,
``docs/iam/deploy-role-policy.json``). The table ignores changes to its own read and write capacity, which
auto scaling owns once the table exists; indexes are not auto scaled (``stacks.capacity.INDEX_HEADROOM``).
"""

from __future__ import annotations

from cdktf_cdktf_provider_aws.appautoscaling_policy import (
    AppautoscalingPolicy,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration,
    AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification,
)
from cdktf_cdktf_provider_aws.appautoscaling_target import AppautoscalingTarget
from cdktf_cdktf_provider_aws.dynamodb_table import DynamodbTable
from constructs import Construct

from stacks.capacity import Throughput
from stacks.context import StackContext
from stacks.naming import Kind

DIMENSIONS = (("write", "WriteCapacityUnits", "DynamoDBWriteCapacityUtilization"),
              ("read", "ReadCapacityUnits", "DynamoDBReadCapacityUtilization"))  # fmt: skip
"""(kind, scalable dimension suffix, predefined metric) of the two dimensions a table scales in."""


class TableAutoScaling(Construct):
    """A scalable target and a target tracking policy for each of a table's read and write units."""

    def __init__(
        self, scope: Construct, id_: str, ctx: StackContext, *, table: DynamodbTable, concern: str, units: Throughput
    ) -> None:
        super().__init__(scope, id_)
        bounds = {"write": (units.min_write, units.max_write), "read": (units.min_read, units.max_read)}
        self.targets: dict[str, AppautoscalingTarget] = {}
        for kind, dimension, metric in DIMENSIONS:
            low, high = bounds[kind]
            target = AppautoscalingTarget(
                self,
                f"{kind}-target",
                service_namespace="dynamodb",
                resource_id=f"table/{table.name}",
                scalable_dimension=f"dynamodb:table:{dimension}",
                min_capacity=low,
                max_capacity=high,
            )
            AppautoscalingPolicy(
                self,
                f"{kind}-policy",
                name=ctx.namer.name(Kind.SCALING_POLICY, f"{concern}-{kind}"),
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                resource_id=target.resource_id,
                scalable_dimension=target.scalable_dimension,
                target_tracking_scaling_policy_configuration=AppautoscalingPolicyTargetTrackingScalingPolicyConfiguration(
                    target_value=round(ctx.config.dynamodb_target_utilisation * 100, 1),
                    predefined_metric_specification=AppautoscalingPolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecification(
                        predefined_metric_type=metric
                    ),
                ),
            )
            self.targets[kind] = target
