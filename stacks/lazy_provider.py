"""Loads only the parts of the prebuilt AWS provider bindings that the stacks use.

Why (cdktf; cdktn's bindings: see ``PACKAGE`` below): ``cdktf_cdktf_provider_aws/__init__.py`` ends with
~2,200 ``from . import <submodule>`` lines, one
per resource and data source, and the jsii kernel's ``require`` of the JavaScript package does the same
on the node side. A stock import therefore costs ~13 s and ~1.2 GB (Python + node) whatever an app
uses; these stacks use ~40 of those submodules. (jsii added lazy submodules upstream in 2026, but the
last prebuilt provider was generated before that and will not be rebuilt.)

How, on the Python side: :func:`install` puts a finder on ``sys.meta_path`` for that one package. It
compiles the package's own ``__init__`` source with the trailing block of submodule imports left out
(recognized on the syntax tree: nothing else may follow ``publication.publish()``), and gives the
module a PEP 562 ``__getattr__`` so ``cdktf_cdktf_provider_aws.s3_bucket`` still resolves on first use.
``from cdktf_cdktf_provider_aws.s3_bucket import S3Bucket`` imports just that submodule, as always.

The jsii runtime must still find a type the kernel hands back from a submodule nobody imported yet.
jsii >= 1.127 does that through ``jsii._reference_map._submodule_fqn_map`` (jsii FQN namespace to
Python module), which newer generated bindings fill in and this provider does not: :func:`install`
fills it (a namespace is the camelCase of the Python module name; a test checks all of them), and if a
type is still unknown after that, imports every submodule, which is exactly the stock state.

On the node side, ``lazy_provider.cjs`` is added to ``NODE_OPTIONS`` (``--require``) before the jsii
kernel starts; it makes the package index's re-exports lazy getters, in memory.

Never a wrong result: whatever is not exactly as expected (another package layout, a jsii without the
lazy hooks, the kernel already running) makes that part fall back to the stock path; the output is
byte-identical either way (``tests/test_lazy_provider.py`` synthesizes both and compares).
``TAP_PROVIDER_IMPORT=stock`` turns all of it off (``lazy-python`` keeps only the Python side, for
the benchmark).
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import CodeType, ModuleType
from typing import Any

from stacks import cdk_library

# The provider of the library TAP_CDK selects (stacks/cdk_library.py). cdktn's provider bindings were
# generated with jsii's lazy submodules already: its ``__init__`` is not the shape below, so the Python
# side is left to its own (lazy) import there, and only the node side has work to do.
LIBRARY = cdk_library.selected()
PACKAGE = LIBRARY.provider
ASSEMBLY = LIBRARY.provider_assembly
SWITCH = "TAP_PROVIDER_IMPORT"
NODE_HOOK = Path(__file__).with_name("lazy_provider.cjs")


def jsii_namespace(module: str) -> str:
    """The jsii submodule name jsii-pacmak turned into ``module``: ``s3_bucket`` -> ``s3Bucket``."""
    head, *rest = module.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _is_publish_call(node: ast.stmt) -> bool:
    return (
        isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == "publish"
        and isinstance(node.value.func.value, ast.Name)
        and node.value.func.value.id == "publication"
    )


def _submodule_names(node: ast.stmt) -> list[str] | None:
    """``from . import a, b`` -> ["a", "b"]; anything else -> None."""
    if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
        return [alias.name for alias in node.names if alias.asname is None]
    return None


def lazy_package_code(source: str, filename: str) -> tuple[CodeType, tuple[str, ...]] | None:
    """The package ``__init__`` without its trailing submodule imports, and their names.

    ``None`` when the source is not the shape jsii-pacmak generates: ``publication.publish()`` followed
    only by ``from . import <name>`` statements that import exactly the names listed in ``__all__``.
    """
    tree = ast.parse(source, filename)
    body = tree.body
    publish = next((i for i, node in enumerate(body) if _is_publish_call(node)), None)
    if publish is None:
        return None
    names: list[str] = []
    for node in body[publish + 1 :]:
        imported = _submodule_names(node)
        if imported is None:
            return None
        names.extend(imported)
    declared = _declared_all(body[:publish])
    if not names or declared is None or sorted(names) != sorted(declared):
        return None
    tree.body = body[: publish + 1]
    return compile(tree, filename, "exec", dont_inherit=True), tuple(names)


def _declared_all(body: Sequence[ast.stmt]) -> list[str] | None:
    for node in body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "__all__"
        ):
            value = ast.literal_eval(node.value)
            return list(value) if isinstance(value, list) else None
    return None


class _LazyPackageLoader(importlib.abc.Loader):
    def __init__(self, code: CodeType, submodules: tuple[str, ...]) -> None:
        self._code = code
        self._submodules = submodules

    def exec_module(self, module: ModuleType) -> None:
        exec(self._code, module.__dict__)
        # publication.publish() replaced the module in sys.modules with its public face.
        public = sys.modules[module.__name__]
        submodules = frozenset(self._submodules)

        def __getattr__(name: str) -> ModuleType:
            if name in submodules:
                return importlib.import_module(f"{module.__name__}.{name}")
            raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")

        public.__getattr__ = __getattr__  # type: ignore[method-assign]
        _register_namespaces(module.__name__, self._submodules)


class _LazyPackageFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != PACKAGE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None or not spec.submodule_search_locations:
            return None
        try:
            lazy = lazy_package_code(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)
        except (OSError, SyntaxError, ValueError):
            lazy = None
        if lazy is None or not _patch_type_resolution():
            # Not the layout we know, or a jsii that cannot resolve types lazily: the next finder
            # imports the package the stock way.
            return None
        spec.loader = _LazyPackageLoader(*lazy)
        return spec


def _register_namespaces(package: str, submodules: Sequence[str]) -> None:
    from jsii import _reference_map  # noqa: PLC0415 - jsii is loaded by the package itself

    _reference_map._submodule_fqn_map.update(
        {f"{ASSEMBLY}.{jsii_namespace(name)}": f"{package}.{name}" for name in submodules}
    )


def import_everything() -> None:
    """The stock state: every submodule imported, so every type is registered with jsii."""
    package = importlib.import_module(PACKAGE)
    for name in package.__all__:
        importlib.import_module(f"{PACKAGE}.{name}")


def _known(reference_map: Any, fqn: str) -> bool:
    return any(
        fqn in registry
        for registry in (
            reference_map._types,
            reference_map._data_types,
            reference_map._enums,
            reference_map._interfaces,
        )
    )


def _patch_type_resolution() -> bool:
    """Let jsii fall back to importing everything for a provider type it cannot place."""
    from jsii import _reference_map  # noqa: PLC0415

    original: Callable[[str], bool] | None = getattr(_reference_map, "_try_import_type_module", None)
    if original is None or not hasattr(_reference_map, "_submodule_fqn_map"):
        return False  # a jsii without lazy type resolution: only the stock import is safe
    if getattr(original, "_tap_fallback", False):
        return True

    def resolve(fqn: str) -> bool:
        found = original(fqn)
        if fqn.startswith(f"{ASSEMBLY}.") and not _known(_reference_map, fqn):
            import_everything()
            return True
        return found

    resolve._tap_fallback = True  # type: ignore[attr-defined]
    _reference_map._try_import_type_module = resolve  # type: ignore[assignment]
    return True


def _kernel_started() -> bool:
    """Whether a jsii assembly was loaded, which starts the kernel's node process (never started here)."""
    reference_map = sys.modules.get("jsii._reference_map")
    return bool(getattr(reference_map, "_assembly_to_module", None))


NODE_OPTION = '--require "{}"'.format(str(NODE_HOOK).replace("\\", "\\\\").replace('"', '\\"'))


def _add_node_hook() -> None:
    """Preload the node side of the hook in the jsii kernel, unless the kernel is already running."""
    if _kernel_started():
        return
    current = os.environ.get("NODE_OPTIONS", "")
    if NODE_OPTION not in current:
        os.environ["NODE_OPTIONS"] = f"{current} {NODE_OPTION}".strip()


def _remove_node_hook() -> None:
    """The stock path on both sides: a parent process may have passed the hook down in NODE_OPTIONS."""
    current = os.environ.get("NODE_OPTIONS", "")
    if NODE_OPTION in current:
        remaining = " ".join(current.replace(NODE_OPTION, " ").split())
        if remaining:
            os.environ["NODE_OPTIONS"] = remaining
        else:
            del os.environ["NODE_OPTIONS"]


def install() -> bool:
    """Install the lazy import (idempotent, cheap: nothing is imported); ``False`` for the stock path."""
    if os.environ.get(SWITCH, "lazy") == "stock":
        _remove_node_hook()
        return False
    if any(isinstance(finder, _LazyPackageFinder) for finder in sys.meta_path):
        return True
    if PACKAGE in sys.modules:
        return False  # imported the stock way already: nothing left to save
    if os.environ.get(SWITCH) == "lazy-python":  # diagnostics (make bench): the Python side only
        _remove_node_hook()
    else:
        _add_node_hook()
    sys.meta_path.insert(0, _LazyPackageFinder())
    return True
