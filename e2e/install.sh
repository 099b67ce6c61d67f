#!/usr/bin/env bash
# Install the real agent CLIs used by the e2e captures into a private cache,
# never globally. Idempotent: re-running with the same pins is a no-op.
#   ORCH_E2E_CACHE (default ~/.cache/orch-e2e)
#   npm CLIs  -> $CACHE/npm/node_modules/.bin/<cli>
# All npm CLIs are installed in ONE npm call under a lock: two concurrent
# `npm install --prefix` runs on the same prefix delete each other's files.
set -euo pipefail
CACHE="${ORCH_E2E_CACHE:-$HOME/.cache/orch-e2e}"
mkdir -p "$CACHE/npm"

# One package@version per line; pinned to what the captures were made with.
NPM_PACKAGES=(
  @anthropic-ai/claude-code@2.1.332
  @openai/codex@0.171.0
  @google/gemini-cli@0.61.0
)

exec 9>"$CACHE/npm.lock"
flock 9
npm install --prefix "$CACHE/npm" --no-audit --no-fund --loglevel=error "${NPM_PACKAGES[@]}"
flock -u 9

# aider (PyPI aider-chat) in its own venv: $CACHE/aider-venv/bin/aider
AIDER_VERSION=0.86.2
if ! "$CACHE/aider-venv/bin/aider" --version 2>/dev/null | grep -qx "aider $AIDER_VERSION"; then
  [ -x "$CACHE/aider-venv/bin/pip" ] || python3 -m venv "$CACHE/aider-venv"
  "$CACHE/aider-venv/bin/pip" install -q --disable-pip-version-check "aider-chat==$AIDER_VERSION"
fi
