// Loaded into the jsii kernel's node processes with `--require` (see stacks/lazy_provider.py).
//
// The prebuilt @cdktf/provider-aws package index (lib/index.js) is a list of ~2,200 lines
//     exports.s3Bucket = require("./s3-bucket");
// and cdktn's @cdktn/provider-aws index the same list as
//     exports.s3Bucket = __importStar(require("./s3-bucket/index"));
// (TypeScript's namespace-import helper, defined at the top of that file and kept in the getter).
// so the kernel's `require` of the package compiles every resource type the provider has. This hook
// rewrites exactly those lines, at load time and in memory, into getters that require the submodule
// on first access (the kernel reaches a type through `closure[namespace][name]`, which is that access).
// Nothing on disk changes. If the index does not have that exact shape (another generator, another
// version), it is loaded unchanged: the stock path.
'use strict';

const Module = require('module');
const fs = require('fs');
const path = require('path');

const PACKAGES = new Set(['@cdktf/provider-aws', '@cdktn/provider-aws']);
const REEXPORT =
  /^exports\.([A-Za-z_$][\w$]*) = (?:require\("(\.\/[\w.\/-]+)"\)|__importStar\(require\("(\.\/[\w.\/-]+)"\)\));$/;
const GETTER_PREFIX = 'Object.defineProperty(exports, ';

function isProviderIndex(filename) {
  if (path.basename(filename) !== 'index.js') return false;
  const root = path.dirname(path.dirname(filename));
  let pkg;
  try {
    pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  } catch {
    return false;
  }
  return PACKAGES.has(pkg.name) && path.resolve(root, pkg.main || 'index.js') === filename;
}

function lazySource(source) {
  let rewritten = 0;
  const lines = source.split('\n').map((line) => {
    const match = REEXPORT.exec(line);
    if (match === null) return line;
    rewritten += 1;
    const name = JSON.stringify(match[1]);
    const load = match[2] !== undefined ? `require(${JSON.stringify(match[2])})` : `__importStar(require(${JSON.stringify(match[3])}))`;
    return (
      `${GETTER_PREFIX}${name}, { enumerable: true, configurable: true, get() { ` +
      `const value = ${load}; ` +
      `${GETTER_PREFIX}${name}, { value, enumerable: true, writable: true, configurable: true }); ` +
      'return value; } });'
    );
  });
  // Any other require in the file means a shape this hook does not know: keep the stock index.
  const others = lines.filter((line) => !line.startsWith(GETTER_PREFIX)).join('\n');
  if (rewritten === 0 || /\brequire\s*\(/.test(others)) return null;
  return lines.join('\n');
}

const stockLoader = Module._extensions['.js'];
Module._extensions['.js'] = function loadProviderIndexLazily(module, filename) {
  if (isProviderIndex(filename)) {
    const lazy = lazySource(fs.readFileSync(filename, 'utf8'));
    if (lazy !== null) {
      module._compile(lazy, filename);
      return;
    }
  }
  stockLoader(module, filename);
};

module.exports = { lazySource, isProviderIndex };
