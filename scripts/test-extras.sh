#!/usr/bin/env bash
# Test-only extras: Debian's Chromium for the studio's browser tests
# (tests/test_studio_browser.py drives /usr/bin/chromium through Playwright's
# python package; `playwright install` is never used, so nothing is fetched
# from a browser CDN). A no-op when chromium is already installed.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" != "0" ]; then
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends chromium fonts-dejavu-core
