"""The platform's cdktf stacks.

Importing this package installs :mod:`stacks.lazy_provider` (before anything can import the provider
bindings), so the synth command, the tests and the tools all load only the provider types they use.
"""

from stacks import lazy_provider

lazy_provider.install()
