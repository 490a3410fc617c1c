#!/usr/bin/env bash
# Installs Liap Tui: the two executables (with their bundled web files), the
# dashboards and docs, the configuration, the systemd units and the logrotate
# file, with every path filled in.
#
#   scripts/install.sh [--root DIR] [--prefix /opt/liaptui] [--state-dir /var/lib/liaptui]
#                      [--etc-dir /etc/liaptui] [--unit-dir /etc/systemd/system]
#                      [--logrotate-dir /etc/logrotate.d] [--keep-days 30] [--bin-dir DIR]
#
# --root installs into a staging folder (packaging); --bin-dir takes already
# built executables instead of building release ones.
set -euo pipefail

ROOT=""
PREFIX=/opt/liaptui
STATE_DIR=/var/lib/liaptui
ETC_DIR=/etc/liaptui
UNIT_DIR=/etc/systemd/system
LOGROTATE_DIR=/etc/logrotate.d
KEEP_DAYS=30
BIN_DIR=""

while [ $# -gt 0 ]; do
  case "$1" in
    --root) ROOT="$2"; shift 2 ;;
    --prefix) PREFIX="$2"; shift 2 ;;
    --state-dir) STATE_DIR="$2"; shift 2 ;;
    --etc-dir) ETC_DIR="$2"; shift 2 ;;
    --unit-dir) UNIT_DIR="$2"; shift 2 ;;
    --logrotate-dir) LOGROTATE_DIR="$2"; shift 2 ;;
    --keep-days) KEEP_DAYS="$2"; shift 2 ;;
    --bin-dir) BIN_DIR="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$KEEP_DAYS" in ''|*[!0-9]*) echo "install.sh: --keep-days must be a number of days" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."
if [ -z "$BIN_DIR" ]; then
  swift build -c release --product game-server
  swift build -c release --product metrics-agent
  BIN_DIR="$(swift build -c release --show-bin-path)"
fi
for exe in game-server metrics-agent; do
  [ -x "$BIN_DIR/$exe" ] || { echo "install.sh: $BIN_DIR/$exe is missing; build it first" >&2; exit 1; }
done

LOG_DIR="$STATE_DIR/logs"
fill() {
  sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@STATE_DIR@|$STATE_DIR|g" -e "s|@ETC_DIR@|$ETC_DIR|g" \
      -e "s|@LOG_DIR@|$LOG_DIR|g" -e "s|@KEEP_DAYS@|$KEEP_DAYS|g" "$1"
}

install -d "$ROOT$PREFIX/bin" "$ROOT$PREFIX/share/liaptui" "$ROOT$PREFIX/share/doc/liaptui" "$ROOT$ETC_DIR" \
  "$ROOT$STATE_DIR" "$ROOT$LOG_DIR" "$ROOT$STATE_DIR/state" "$ROOT$UNIT_DIR" "$ROOT$LOGROTATE_DIR"
install -m 0755 "$BIN_DIR/game-server" "$BIN_DIR/metrics-agent" "$ROOT$PREFIX/bin/"
# The web client and the dashboard are resources found next to the executables (test bundles are not installed).
for bundle in "$BIN_DIR"/*.resources; do
  case "$bundle" in *Tests.resources|*TestSupport.resources) continue ;; esac
  [ -e "$bundle" ] || continue
  rm -rf "${ROOT}${PREFIX:?}/bin/$(basename "$bundle")"
  cp -R "$bundle" "$ROOT$PREFIX/bin/"
done
rm -rf "${ROOT}${PREFIX:?}/share/liaptui/dashboards"
cp -R dashboards "$ROOT$PREFIX/share/liaptui/dashboards"
cp docs/*.md "$ROOT$PREFIX/share/doc/liaptui/"
# For phases 2 and 3: the nginx site for two sticky instances (copy it to /etc/nginx/conf.d/ and edit the addresses).
install -D -m 0644 deploy/nginx/liaptui.conf "$ROOT$PREFIX/share/liaptui/nginx/liaptui.conf"

# Configuration the user edits is never overwritten: a newer default lands beside it as .dist.
for file in alerts.yaml alerts.test.yaml prices.yaml; do
  if [ -e "$ROOT$ETC_DIR/$file" ]; then
    install -m 0644 "config/$file" "$ROOT$ETC_DIR/$file.dist"
  else
    install -m 0644 "config/$file" "$ROOT$ETC_DIR/$file"
  fi
done
# The environment files hold webhook URLs and tokens: readable by root only (systemd reads them before
# dropping to the service user). Existing ones are tightened too.
for env in game-server metrics-agent; do
  if [ ! -e "$ROOT$ETC_DIR/$env.env" ]; then
    (umask 077; printf '# Environment for liaptui-%s (KEY=value per line; secrets: this file is 0600)\n' "$env" > "$ROOT$ETC_DIR/$env.env")
  fi
  chmod 0600 "$ROOT$ETC_DIR/$env.env"
done

for unit in deploy/systemd/*.service; do
  fill "$unit" > "$ROOT$UNIT_DIR/$(basename "$unit")"
done
fill logrotate/liaptui.conf > "$ROOT$LOGROTATE_DIR/liaptui"

echo "installed under ${ROOT:-/}: $PREFIX/bin, $ETC_DIR, $UNIT_DIR/liaptui-*.service, $LOGROTATE_DIR/liaptui"
if [ -z "$ROOT" ]; then
  cat <<NEXT
next:
  id liaptui >/dev/null 2>&1 || useradd --system --home-dir $STATE_DIR --shell /usr/sbin/nologin liaptui
  chown -R liaptui:liaptui $STATE_DIR
  systemctl daemon-reload && systemctl enable --now liaptui-game-server liaptui-metrics-agent
NEXT
fi
