#!/usr/bin/env bash
# Headless Chromium (Debian's package) for the rendered-email screenshot test. Idempotent.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "install: installing chromium (Debian package) for the email rendering test"
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q chromium
fi
