#!/usr/bin/env python3
"""The Rust versions the repository names agree with what Cargo.lock needs.

- `rust-version` in Cargo.toml ([workspace.package]) is at least the highest `rust-version` of any
  locked crate built for this platform (the oldest compiler that can build the workspace);
- rust-toolchain.toml pins a release (`channel = "X.Y.Z"`) at least that `rust-version`;
- the image build (deploy/Dockerfile, `ARG RUST_VERSION=X.Y`) uses that release.

Reads `cargo metadata` (no build, no network: the lock file and the local registry). Prints the
crates that set the minimum. Exit status 0 when they agree, 1 otherwise.
"""

import json
import pathlib
import subprocess
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def version(text: str) -> tuple[int, int, int]:
    """`1.89` and `1.89.0` alike."""
    parts = [int(part) for part in text.split(".")] + [0, 0]
    return (parts[0], parts[1], parts[2])


def host() -> str:
    out = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True, cwd=ROOT).stdout
    return next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("host: "))


def metadata() -> dict:
    command = ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", host()]
    for extra in ([], ["--offline"]):
        result = subprocess.run(command + extra, capture_output=True, text=True, cwd=ROOT)
        if result.returncode == 0:
            return json.loads(result.stdout)
    sys.exit(f"check-rust-version: cargo metadata failed:\n{result.stderr}")


def main() -> int:
    meta = metadata()
    built = {node["id"] for node in meta["resolve"]["nodes"]}
    needs = sorted(
        (version(p["rust_version"]), p["name"], p["version"])
        for p in meta["packages"]
        if p["id"] in built and p.get("rust_version") and p.get("source")
    )
    needed = needs[-1][0] if needs else (1, 0, 0)
    cargo_toml = tomllib.loads((ROOT / "Cargo.toml").read_text())
    declared = cargo_toml["workspace"]["package"]["rust-version"]
    toolchain_file = ROOT / "rust-toolchain.toml"
    channel = tomllib.loads(toolchain_file.read_text())["toolchain"]["channel"]
    top = ", ".join(f"{name} {ver}" for v, name, ver in needs if v == needed)
    shown = ".".join(map(str, needed))
    problems = []
    if version(declared) < needed:
        problems.append(f"Cargo.toml says rust-version = {declared}, but the locked crates need {shown} ({top})")
    if not channel[:1].isdigit():
        problems.append(f"rust-toolchain.toml pins `{channel}`: name a release (X.Y.Z), so that builds are repeatable")
    elif version(channel) < version(declared):
        problems.append(f"rust-toolchain.toml pins {channel}, older than rust-version {declared}")
    dockerfile = ROOT / "deploy" / "Dockerfile"
    if dockerfile.exists():
        image = next(
            (line.split("=", 1)[1].strip() for line in dockerfile.read_text().splitlines() if line.startswith("ARG RUST_VERSION=")),
            None,
        )
        if image is None:
            problems.append("deploy/Dockerfile has no `ARG RUST_VERSION=`")
        elif channel[:1].isdigit() and version(channel)[: image.count(".") + 1] != version(image)[: image.count(".") + 1]:
            problems.append(f"deploy/Dockerfile builds with Rust {image}, rust-toolchain.toml pins {channel}")
    for problem in problems:
        print(f"check-rust-version: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"check-rust-version: rust-version {declared} (the lock needs {shown}: {top}); toolchain {channel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
