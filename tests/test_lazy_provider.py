"""The lazy provider import: the same bytes as a stock synthesis, a fraction of the provider loaded, and
the stock path whenever anything is not as expected."""

from __future__ import annotations

import filecmp
import importlib.machinery
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from stacks import LIBRARY, cdk_library, lazy_provider
from tests.conftest import ROOT, SYNTH_ENV, library_python, provider_package_dir, run_main

PACKAGE_DIR = Path(str(importlib.machinery.PathFinder.find_spec(lazy_provider.PACKAGE).origin)).parent  # type: ignore[union-attr]
FIRST_TYPE = re.compile(rb'jsii_type="@cdktf/provider-aws\.([A-Za-z0-9]+)\.')
BOTH = pytest.mark.parametrize("library", sorted(cdk_library.LIBRARIES))
ON_CDKTF = pytest.mark.skipif(
    LIBRARY != cdk_library.CDKTF,
    reason="cdktf's Python bindings only: cdktn's are generated with jsii's lazy submodules and their own "
    "namespace map, so the Python side is left to them (test_cdktn_python_bindings_are_natively_lazy)",
)


def run_python(code: str, env: dict[str, str] | None = None, timeout: int = 600, library: str | None = None) -> str:
    library = library or LIBRARY.name
    result = subprocess.run(
        [library_python(library), "-c", code],
        cwd=ROOT,
        env={**os.environ, cdk_library.SWITCH: library, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def synth(folder: Path, mode: str, library: str) -> Path:
    folder.mkdir()
    result = run_main(folder, {**SYNTH_ENV, lazy_provider.SWITCH: mode}, library=library)
    assert result.returncode == 0, result.stderr[-3000:]
    return folder / "cdktf.out"


def tree(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


@BOTH
def test_lazy_synthesis_is_byte_identical_to_stock(
    library: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # The session's lazy synthesis of each library (one per session), against a stock one.
    lazy_out: Path = request.getfixturevalue("cli_synth" if library == LIBRARY.name else "other_synth")
    lazy, stock = tree(lazy_out), tree(synth(tmp_path / "stock", "stock", library))
    assert sorted(lazy) == sorted(stock)
    assert len(lazy) >= 10, "every stack's JSON, manifest and assets"
    different = [name for name in lazy if not filecmp.cmp(lazy[name], stock[name], shallow=False)]
    assert different == []


PROBE = """
import json, os, sys
import stacks
from stacks import lazy_provider
from stacks.app import build
from stacks.config import load
import cdktf
build(cdktf.Testing.app(), load({}))
loaded = sorted(m for m in sys.modules if m.startswith(lazy_provider.PACKAGE + "."))
print(json.dumps({"loaded": loaded, "node_options": os.environ.get("NODE_OPTIONS", "")}))
"""


@BOTH
def test_building_every_stack_loads_only_the_submodules_it_uses(library: str) -> None:
    package = cdk_library.LIBRARIES[library].provider
    probe = json.loads(run_python(PROBE, library=library).splitlines()[-1])
    loaded = set(probe["loaded"]) - {f"{package}._jsii"}
    assert 20 <= len(loaded) <= 100, sorted(loaded)
    assert f"{package}.s3_bucket" in loaded
    assert str(lazy_provider.NODE_HOOK) in probe["node_options"]
    stock = json.loads(run_python(PROBE, {lazy_provider.SWITCH: "stock"}, library=library).splitlines()[-1])
    if library == "cdktf":
        assert len(stock["loaded"]) > 2000, "the stock import loads every submodule"
    else:
        assert stock["loaded"] == probe["loaded"], "cdktn's bindings load submodules on first use themselves"
    assert str(lazy_provider.NODE_HOOK) not in stock["node_options"]


def test_cdktn_python_bindings_are_natively_lazy() -> None:
    """Not the shape the Python side rewrites (so it imports them the stock way), and they need nothing
    from it: their index ends in a PEP 562 ``__getattr__`` and their ``_jsii`` maps every namespace."""
    package = provider_package_dir("cdktn")
    source = (package / "__init__.py").read_text()
    assert lazy_provider.lazy_package_code(source, "__init__.py") is None
    assert "def __getattr__(name: str)" in source and "\nfrom . import " not in source
    fqn_map = (package / "_jsii" / "__init__.py").read_text()
    assert '"@cdktn/provider-aws.s3Bucket": "cdktn_provider_aws.s3_bucket"' in fqn_map


@ON_CDKTF
def test_every_submodule_maps_to_its_jsii_namespace() -> None:
    code = lazy_provider.lazy_package_code((PACKAGE_DIR / "__init__.py").read_text(), "__init__.py")
    assert code is not None
    submodules = code[1]
    assert len(submodules) > 2000
    mismatched = []
    for name in submodules:
        with (PACKAGE_DIR / name / "__init__.py").open("rb") as source:
            found = None
            while found is None and (chunk := source.read(1 << 16)):
                found = FIRST_TYPE.search(chunk)
        if found is None or found.group(1).decode() != lazy_provider.jsii_namespace(name):
            mismatched.append(name)
    assert mismatched == []


@ON_CDKTF
def test_a_layout_it_does_not_know_is_left_to_the_stock_import() -> None:
    source = (PACKAGE_DIR / "__init__.py").read_text()
    lazy = lazy_provider.lazy_package_code(source, "__init__.py")
    assert lazy is not None and "s3_bucket" in lazy[1]
    assert lazy_provider.lazy_package_code(source + "\nEXTRA = 1\n", "x") is None  # code after the imports
    assert lazy_provider.lazy_package_code(source + "\nfrom . import not_in_all\n", "x") is None
    assert lazy_provider.lazy_package_code(source.replace("publication.publish()", "pass"), "x") is None


FALLBACK_PROBE = """
import json, sys
import stacks
import cdktf_cdktf_provider_aws
from jsii import _reference_map as refs
mapped = "@cdktf/provider-aws.sqsQueue.SqsQueue"
refs._try_import_type_module(mapped)
after_mapped = sum(m.startswith("cdktf_cdktf_provider_aws.") for m in sys.modules)
# a namespace the map does not know (as if jsii named a submodule unexpectedly): import everything
del refs._submodule_fqn_map["@cdktf/provider-aws.snsTopic"]
refs._try_import_type_module("@cdktf/provider-aws.snsTopic.SnsTopic")
print(json.dumps({
    "after_mapped": after_mapped,
    "sqs": "@cdktf/provider-aws.sqsQueue.SqsQueue" in refs._types,
    "sns": "@cdktf/provider-aws.snsTopic.SnsTopic" in refs._types,
    "after_fallback": sum(m.startswith("cdktf_cdktf_provider_aws.") for m in sys.modules),
}))
"""


@ON_CDKTF
def test_jsii_finds_unimported_types_and_falls_back_to_everything_when_unmapped() -> None:
    found = json.loads(run_python(FALLBACK_PROBE).splitlines()[-1])
    assert found["sqs"] and found["after_mapped"] <= 5, found
    assert found["sns"] and found["after_fallback"] > 2000, found


NODE_PROBE = """
const { lazySource } = require(process.argv[1]);
// cdktf's index shape, and cdktn's (TypeScript's namespace-import helper around each require)
const lineA = process.argv[2] === 'cdktn'
  ? 'exports.a = __importStar(require("./a/index"));' : 'exports.a = require("./a");';
const stock = ['"use strict";', 'var __importStar = (m) => ({ star: m });', 'exports.a = exports.b = void 0;',
               lineA, 'exports.b = require("./b-c");', ''].join('\\n');
const lazy = lazySource(stock);
const fake = { exports: {} };
let required = [];
new Function('exports', 'require', lazy)(fake.exports, (p) => { required.push(p); return { p }; });
const before = required.length;
const b = fake.exports.b;
const a = fake.exports.a;
console.log(JSON.stringify({
  before, after: required, b: b.p, again: fake.exports.b === b, a: a.star ? 'star:' + a.star.p : a.p,
  keys: Object.keys(fake.exports).sort(),
  unknown: lazySource(stock + 'const x = require("other");\\n'),
  none: lazySource('"use strict";\\n'),
}));
"""


@BOTH
def test_node_hook_makes_reexports_lazy_and_leaves_other_shapes_alone(library: str) -> None:
    result = subprocess.run(
        ["node", "-e", NODE_PROBE, str(lazy_provider.NODE_HOOK), library], capture_output=True, text=True, check=False
    )
    if result.returncode != 0 and "command not found" in result.stderr:
        pytest.skip("node is not installed")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found == {
        "before": 0,
        "after": ["./b-c", "./a/index" if library == "cdktn" else "./a"],
        "b": "./b-c",
        "again": True,
        "a": "star:./a/index" if library == "cdktn" else "./a",
        "keys": ["a", "b"],
        "unknown": None,
        "none": None,
    }


INDEX_PROBE = """
const { lazySource, isProviderIndex } = require(process.argv[1]);
const index = process.argv[2];
const lazy = lazySource(require('fs').readFileSync(index, 'utf8'));
console.log(JSON.stringify({
  provider: isProviderIndex(index),
  rewritten: lazy === null ? 0 : lazy.split('Object.defineProperty(exports, ').length - 1,
}));
"""


@BOTH
def test_node_hook_recognizes_each_librarys_real_provider_index(library: str, tmp_path: Path) -> None:
    """The index and package.json the jsii kernel loads, from the bindings' own tarball."""
    (tarball,) = (provider_package_dir(library) / "_jsii").glob("*.jsii.tgz")
    with tarfile.open(tarball) as archive:
        wanted = [archive.getmember(f"package/{name}") for name in ("package.json", "lib/index.js")]
        archive.extractall(tmp_path, members=wanted, filter="data")
    index = tmp_path / "package" / "lib" / "index.js"
    result = subprocess.run(
        ["node", "-e", INDEX_PROBE, str(lazy_provider.NODE_HOOK), str(index)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["provider"] is True
    assert found["rewritten"] > 2000, "every re-export of the index becomes a lazy getter"
