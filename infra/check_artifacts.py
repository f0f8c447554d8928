"""Checks what `sam build` wrote against what Lambda runs.

For every function of the built template (.aws-sam/build/template.yaml):
- its CodeUri folder holds an executable `bootstrap` (a `provided` runtime
  starts nothing else);
- the bootstrap is an ELF for the function's `Architectures` (x86_64 or
  arm64; Lambda Developer Guide, "Selecting and configuring an instruction
  set architecture");
- the newest glibc symbol version it needs is at most 2.34, the glibc of
  provided.al2023 (Lambda Developer Guide, "Lambda runtimes": Amazon Linux
  2023's glibc);
- unzipped it fits Lambda's 250 MB, zipped its 50 MB for a direct upload
  (Lambda Developer Guide, "Lambda quotas").
Prints one line per function; exits 1 if any check fails.
"""
import io
import os
import re
import subprocess
import sys
import zipfile

from samtranslator.yaml_helper import yaml_parse

GLIBC_MAX = (2, 34)
MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}
UNZIPPED_MAX = 250 * 1024 * 1024
ZIPPED_MAX = 50 * 1024 * 1024


def glibc_needed(path):
    """The newest GLIBC_x.y version the ELF's symbols need (readelf -V)."""
    out = subprocess.run(["readelf", "-V", "--wide", path], capture_output=True, text=True, check=True).stdout
    versions = {tuple(int(p) for p in m.split(".")) for m in re.findall(r"GLIBC_([0-9]+(?:\.[0-9]+)+)", out)}
    return max(versions) if versions else None


def zipped_size(path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.write(path, "bootstrap")
    return len(buf.getvalue())


def main(template_path):
    base = os.path.dirname(template_path)
    template = yaml_parse(open(template_path).read())
    globals_fn = template.get("Globals", {}).get("Function", {})
    problems = []
    print(f"{'function':<22} {'arch':<7} {'glibc':<6} {'bootstrap':>11} {'zip':>10}")
    for name, resource in sorted(template.get("Resources", {}).items()):
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource.get("Properties", {})
        arch = (props.get("Architectures") or globals_fn.get("Architectures") or ["x86_64"])[0]
        bootstrap = os.path.join(base, props.get("CodeUri", ""), "bootstrap")
        if not os.access(bootstrap, os.X_OK):
            problems.append(f"{name}: no executable bootstrap at {bootstrap}")
            continue
        with open(bootstrap, "rb") as f:
            header = f.read(20)
        machine = MACHINES.get(int.from_bytes(header[18:20], "little")) if header[:4] == b"\x7fELF" else None
        if machine != arch:
            problems.append(f"{name}: bootstrap is built for {machine or 'no Lambda machine'}, Architectures is {arch}")
        glibc = glibc_needed(bootstrap)
        if glibc and glibc > GLIBC_MAX:
            problems.append(f"{name}: needs GLIBC_{'.'.join(map(str, glibc))}, provided.al2023 has 2.34")
        size = os.path.getsize(bootstrap)
        zipped = zipped_size(bootstrap)
        if size > UNZIPPED_MAX or zipped > ZIPPED_MAX:
            problems.append(f"{name}: {size} bytes ({zipped} zipped) is over Lambda's limits")
        shown = ".".join(map(str, glibc)) if glibc else "none"
        print(f"{name:<22} {machine or '?':<7} {shown:<6} {size:>11,} {zipped:>10,}")
    for p in problems:
        print(f"PROBLEM: {p}", file=sys.stderr)
    if not any(r.get("Type") == "AWS::Serverless::Function" for r in template.get("Resources", {}).values()):
        problems.append("the built template has no functions")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
