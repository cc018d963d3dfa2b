"""The platform's cdktf stacks.

Importing this package selects the CDK library (:mod:`stacks.cdk_library`, ``TAP_CDK=cdktf|cdktn``)
and installs :mod:`stacks.lazy_provider` (before anything can import the provider bindings), so the
synth command, the tests and the tools all load only the provider types they use.
"""

from stacks import cdk_library, lazy_provider

LIBRARY = cdk_library.install()
lazy_provider.install()
