#!/usr/bin/env bash
# EC2 user data for a fresh Debian 12 or Ubuntu 22.04+ instance (phase 1: one
# t3.small with a public IP). It installs the system packages, creates the
# service user, unpacks a release built with `scripts/install.sh --root`
# (tarred and uploaded to S3 or any HTTPS URL), and starts both services.
#
# Set RELEASE_URL below (or in the launch template) before use.
set -euo pipefail

RELEASE_URL="${RELEASE_URL:-https://example.com/liaptui/liaptui.tgz}"
# Instance metadata with IMDSv2 (a session token first; new instances require it),
# then IMDSv1 for older settings, then the host name.
imds() {
  local token
  token="$(curl -fsS -m 2 -X PUT http://169.254.169.254/latest/api/token \
    -H 'X-aws-ec2-metadata-token-ttl-seconds: 300' 2>/dev/null || true)"
  if [ -n "$token" ]; then
    curl -fsS -m 2 -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1" && return 0
  fi
  curl -fsS -m 2 "http://169.254.169.254/latest/meta-data/$1"
}
INSTANCE_ID="$(imds instance-id || hostname)"

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends ca-certificates curl libsqlite3-0 zlib1g logrotate sqlite3

id liaptui >/dev/null 2>&1 || useradd --system --home-dir /var/lib/liaptui --shell /usr/sbin/nologin liaptui
curl -fsSL "$RELEASE_URL" -o /tmp/liaptui.tgz
tar -C / -xzf /tmp/liaptui.tgz
rm -f /tmp/liaptui.tgz
install -d -o liaptui -g liaptui /var/lib/liaptui /var/lib/liaptui/logs /var/lib/liaptui/state
chown -R liaptui:liaptui /var/lib/liaptui

# The instance ID names this server in metrics lines and in the sticky-session cookie.
(umask 077; printf 'LIAPTUI_INSTANCE_ID=%s\n' "$INSTANCE_ID" > /etc/liaptui/game-server.env)

systemctl daemon-reload
systemctl enable --now liaptui-game-server liaptui-metrics-agent
