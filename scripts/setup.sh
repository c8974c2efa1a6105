#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build Kaifang: the C libraries that
# libarchive (bundles), libcurl (harvesting) and SQLite need, and pkg-config.
# Safe to run again: it installs only what is missing.
set -euo pipefail

need=()
pkg-config --version >/dev/null 2>&1 || need+=(pkg-config)
pkg-config --exists libarchive 2>/dev/null || need+=(libarchive-dev)
pkg-config --exists libcurl 2>/dev/null || need+=(libcurl4-openssl-dev)
pkg-config --exists sqlite3 2>/dev/null || need+=(libsqlite3-dev)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${need[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "setup: please install as root: apt-get install -y ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
