"""Vendor the browser viewer of `radgenome serve` into the package (`make web`, run by `make test`).

    python lock/js/vendor.py

Reads ``package-lock.json`` (made by ``npm install --package-lock-only`` from ``package.json``;
to upgrade NiiVue, change its version there and rerun that), downloads each locked package's
tarball from the npm registry, checks its sha512 ``integrity`` and writes:

- ``warehouse/web/static/vendor/niivue.js``: NiiVue's self-contained ES module (``dist/index.js``);
- ``warehouse/web/static/vendor/LICENSES.txt``: NiiVue's licence (its npm package ships none, so the
  text of its repository's LICENSE is kept in ``licenses/niivue.txt``) and the licence file of
  every other locked package (the packages the module bundles).

Written by hand rather than with ``npm ci`` because a fresh machine has Python and pip, not
necessarily Node: this is ``npm ci``'s download-and-verify step for a lock without install
scripts. Nothing is fetched at run time: the server serves these two files.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = HERE.parents[1] / "warehouse" / "web" / "static" / "vendor"
MODULE = ("@niivue/niivue", "package/dist/index.js")
REGISTRY = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")


def fetch(pkg: str, meta: dict) -> tarfile.TarFile:
    """Package `pkg`'s tarball (the registry's standard address; the lock records no URL), checked against
    the lock's ``sha512-<base64>`` integrity."""
    url = f"{REGISTRY}/{pkg}/-/{pkg.rpartition('/')[2]}-{meta['version']}.tgz"
    integrity = meta["integrity"]
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            data = r.read()
    except OSError as e:  # no registry here: make goes on, and `serve` says the viewer is not built
        sys.exit(f"cannot fetch {url} ({e}): the viewer is not vendored; set NPM_CONFIG_REGISTRY to a mirror")
    algo, _, want = integrity.partition("-")
    got = base64.b64encode(hashlib.new(algo, data).digest()).decode()
    if got != want:
        sys.exit(f"{url}: {algo} {got} is not the lock's {want}: refusing to vendor it")
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")


def licence_text(tar: tarfile.TarFile) -> str | None:
    """The text of the package's top-level licence file, if it has one."""
    for m in tar.getmembers():
        top = m.name.split("/", 1)[-1]
        if m.isfile() and "/" not in top and top.lower().startswith(("licen", "copying")):
            return tar.extractfile(m).read().decode("utf-8", "replace")
    return None


def main() -> None:
    lock = json.loads((HERE / "package-lock.json").read_text())
    packages = {k.removeprefix("node_modules/"): v for k, v in lock["packages"].items()
                if k and not v.get("optional") and not v.get("dev")}
    name, member = MODULE
    meta = packages[name]
    parts = [f"NiiVue {meta['version']} ({meta['license']}), vendored as niivue.js, and the packages it "
             f"bundles.\n\n== {name} {meta['version']} ==\n{(HERE / 'licenses' / 'niivue.txt').read_text()}"]
    TARGET.mkdir(parents=True, exist_ok=True)
    with fetch(name, meta) as tar:
        module = tar.extractfile(member).read()
    for pkg, meta in sorted(packages.items()):
        if pkg == name:
            continue
        with fetch(pkg, meta) as tar:
            text = licence_text(tar)
        if text is None:
            sys.exit(f"{pkg} {meta['version']} ships no licence file: add its text to lock/js/licenses/")
        parts.append(f"== {pkg} {meta['version']} ({meta.get('license')}) ==\n{text}")
    (TARGET / "LICENSES.txt").write_text("\n\n".join(parts))
    (TARGET / "niivue.js").write_bytes(module)  # last: its presence means the vendoring is complete
    print(f"vendored {name} {packages[name]['version']} into {TARGET.relative_to(HERE.parents[1])}")


if __name__ == "__main__":
    main()
