"""What every construct of one environment stack needs to know: names, config, account and region."""

from __future__ import annotations

from dataclasses import dataclass

from stacks.config import EnvironmentConfig
from stacks.naming import Namer


@dataclass(frozen=True)
class StackContext:
    """Shared, immutable facts of one environment stack.

    ``account_id`` and ``partition`` are Terraform tokens (resolved at plan time); everything else is
    a plain value known at synth time.
    """

    namer: Namer
    config: EnvironmentConfig
    region: str
    account_id: str
    partition: str

    @property
    def production(self) -> bool:
        return self.config.production

    def arn(self, service: str, resource: str, *, regional: bool = True, account: bool = True) -> str:
        """ARN of a resource in this environment's account and region."""
        region = self.region if regional else ""
        account_id = self.account_id if account else ""
        return f"arn:{self.partition}:{service}:{region}:{account_id}:{resource}"

    def service_endpoint(self, service: str) -> str:
        """``<service>.<region>.amazonaws.com``, as used by ``kms:ViaService``."""
        return f"{service}.{self.region}.amazonaws.com"
