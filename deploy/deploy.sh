#!/usr/bin/env bash
# Upgrades a host that runs Liap Tui under systemd, without losing a game:
# builds release binaries here, copies them over SSH, installs them, and
# restarts the game server gracefully (players are warned, games are saved
# and restored; clients reconnect on their own).
#
#   deploy/deploy.sh user@host [--prefix /opt/liaptui]
set -euo pipefail

HOST="${1:?usage: deploy/deploy.sh user@host [--prefix /opt/liaptui]}"
shift
PREFIX=/opt/liaptui
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX="$2"; shift 2 ;;
    *) echo "deploy.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.."
swift build -c release --static-swift-stdlib --product game-server
swift build -c release --static-swift-stdlib --product metrics-agent
BIN="$(swift build -c release --show-bin-path)"
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
scripts/install.sh --root "$STAGE/root" --prefix "$PREFIX" --bin-dir "$BIN"
tar -C "$STAGE/root" -czf "$STAGE/liaptui.tgz" .

scp "$STAGE/liaptui.tgz" "$HOST:/tmp/liaptui.tgz"
# shellcheck disable=SC2087  # expanded here on purpose: PREFIX is ours
ssh "$HOST" sudo bash -s <<REMOTE
set -euo pipefail
# Keep the user's configuration: unpack beside it and only add what is missing.
mkdir -p /tmp/liaptui-new && tar -C /tmp/liaptui-new -xzf /tmp/liaptui.tgz
cp -R /tmp/liaptui-new$PREFIX/. $PREFIX/
cp -n /tmp/liaptui-new/etc/liaptui/* /etc/liaptui/ 2>/dev/null || true
cp /tmp/liaptui-new/etc/systemd/system/liaptui-*.service /etc/systemd/system/
cp /tmp/liaptui-new/etc/logrotate.d/liaptui /etc/logrotate.d/liaptui
rm -rf /tmp/liaptui-new /tmp/liaptui.tgz
systemctl daemon-reload
# The restart sends SIGTERM: a 30 s notice to players, rooms saved, then the new binary restores them.
systemctl restart liaptui-game-server
systemctl restart liaptui-metrics-agent
for _ in \$(seq 1 30); do
  curl -fsS http://127.0.0.1:5050/api/health >/dev/null && break
  sleep 1
done
curl -fsS http://127.0.0.1:5050/api/health
REMOTE
echo "deployed to $HOST"
