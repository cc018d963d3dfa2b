"""The stock reference for the synth benchmark: a one-bucket cdktf app, imported the way cdktf documents.

It deliberately does not import ``stacks`` (so none of our import machinery is installed) and exits the
ordinary way; ``python -m tools.bench.stock_app OUTDIR`` synthesizes it into OUTDIR.
"""

from __future__ import annotations

import sys

from cdktf import App, TerraformStack
from cdktf_cdktf_provider_aws.provider import AwsProvider
from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket


def main(outdir: str) -> None:
    app = App(outdir=outdir)
    stack = TerraformStack(app, "one-bucket")
    AwsProvider(stack, "aws", region="eu-west-1")
    S3Bucket(stack, "bucket", bucket_prefix="tap-bench-")
    app.synth()


if __name__ == "__main__":
    main(sys.argv[1])
