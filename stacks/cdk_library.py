"""Selects the CDK library the stacks run on: cdktf (HashiCorp's, archived in December 2025) or its
maintained fork CDK Terrain (cdktn), with ``TAP_CDK=cdktf|cdktn`` (default ``cdktf``: what
``Pipfile.lock`` installs; ``requirements-cdktn.txt`` installs cdktn into ``.venv-cdktn``).

The stacks' code is written once, against cdktf's module names (``cdktf``,
``cdktf_cdktf_provider_aws``). On cdktn, :func:`install` puts an alias finder on ``sys.meta_path``:
importing ``cdktf`` gives the ``cdktn`` module itself, and ``cdktf_cdktf_provider_aws.s3_bucket``
gives ``cdktn_provider_aws.s3_bucket`` (the same module object under both names, so classes,
``isinstance`` and jsii's type registry see one type). The two libraries have the same Python API for
everything the stacks use; ``tests/test_cdk_equivalence.py`` proves the synthesized resources equal.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType

SWITCH = "TAP_CDK"


@dataclass(frozen=True)
class Library:
    """One CDK library and its prebuilt AWS provider, by their Python module and jsii assembly names."""

    name: str
    core: str
    """Python module of the CDK core (``App``, ``TerraformStack``, backends)."""
    provider: str
    """Python package of the prebuilt AWS provider bindings."""
    provider_assembly: str
    """The provider's jsii assembly (its npm package name), which prefixes every jsii type name."""


CDKTF = Library("cdktf", "cdktf", "cdktf_cdktf_provider_aws", "@cdktf/provider-aws")
CDKTN = Library("cdktn", "cdktn", "cdktn_provider_aws", "@cdktn/provider-aws")
LIBRARIES = {library.name: library for library in (CDKTF, CDKTN)}
DEFAULT = CDKTF
WRITTEN_FOR = CDKTF
"""The module names the stacks' code imports; any other library is aliased to them."""


class CdkLibraryError(ValueError):
    """``TAP_CDK`` names no library this project supports."""


def selected(environ: Mapping[str, str] = os.environ) -> Library:
    """The library ``TAP_CDK`` names (default :data:`DEFAULT`); a clear error for anything else."""
    value = environ.get(SWITCH, "").strip() or DEFAULT.name
    try:
        return LIBRARIES[value]
    except KeyError:
        raise CdkLibraryError(f"{SWITCH}={value!r}: expected one of {', '.join(sorted(LIBRARIES))}") from None


def aliased_name(fullname: str, source: Library, target: Library) -> str | None:
    """``source``'s module name ``fullname`` under ``target``'s names, or ``None`` if it is not one."""
    for old, new in ((source.provider, target.provider), (source.core, target.core)):
        if fullname == old or fullname.startswith(f"{old}."):
            return new + fullname[len(old) :]
    return None


class _AliasLoader(importlib.abc.Loader):
    """Gives the already imported target module; nothing is executed twice."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.real_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.real_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the alias's spec on the shared module object: give it back its own.
        module.__spec__ = self.real_spec


class AliasFinder(importlib.abc.MetaPathFinder):
    """Imports ``source``'s module names as ``target``'s modules."""

    def __init__(self, source: Library, target: Library) -> None:
        self.source = source
        self.target = target

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        real = aliased_name(fullname, self.source, self.target)
        if real is None:
            return None
        module = importlib.import_module(real)
        is_package = hasattr(module, "__path__")
        spec = importlib.machinery.ModuleSpec(fullname, _AliasLoader(real), is_package=is_package)
        if is_package:
            spec.submodule_search_locations = list(module.__path__)
        return spec


def install(environ: Mapping[str, str] = os.environ) -> Library:
    """Make the stacks' imports resolve to the selected library (idempotent); return it."""
    library = selected(environ)
    for finder in sys.meta_path:
        if isinstance(finder, AliasFinder):
            if finder.target != library:
                raise CdkLibraryError(f"{finder.target.name} is already installed in this process")
            return library
    if library != WRITTEN_FOR:
        loaded = sys.modules.get(WRITTEN_FOR.core)
        if loaded is not None and loaded.__name__ == WRITTEN_FOR.core:
            raise CdkLibraryError(
                f"{WRITTEN_FOR.name} is already imported in this process: set {SWITCH}={library.name} before it starts"
            )
        sys.meta_path.insert(0, AliasFinder(WRITTEN_FOR, library))
    return library
