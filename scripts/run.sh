#!/usr/bin/env bash
# `make run`: migrate, start the gateway simulator and billingd, print a working curl example.
# Expects DATABASE_URL (the Makefile finds or starts Postgres) and the binaries in bin/. Unless
# BILLING_MIGRATION_DATABASE_URL is set too, DATABASE_URL is taken as an admin URL and the database gets
# production's two roles: billing_owner runs the migrations, billingd runs as billing_service (which cannot
# rewrite the audit log or change the schema). docs/security.md has the details.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .data

# Dev secrets are made once and kept in .data/ so a restart keeps working with the same data.
[ -f .data/admin-token ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' | sed 's/^/adm_/' > .data/admin-token
[ -f .data/service-token ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' | sed 's/^/svc_/' > .data/service-token
[ -f .data/support-token ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' | sed 's/^/sup_/' > .data/support-token
[ -f .data/encryption-key ] || head -c 32 /dev/urandom | base64 > .data/encryption-key
ADMIN=$(cat .data/admin-token); SERVICE=$(cat .data/service-token); SUPPORT=$(cat .data/support-token)

# Development is chosen here, by name: an unset BILLING_MODE is production, which refuses the test clock,
# the simulator and development keys.
export BILLING_MODE="${BILLING_MODE:-dev}"
export BILLING_HTTP_ADDR="${BILLING_HTTP_ADDR:-127.0.0.1:8080}"
# Links in customer emails (and the change-card return URLs) reach this billingd, on whatever port it listens.
export BILLING_PUBLIC_URL="${BILLING_PUBLIC_URL:-http://$BILLING_HTTP_ADDR}"
export BILLING_BOOTSTRAP_KEYS="${BILLING_BOOTSTRAP_KEYS:-admin:$ADMIN,service:$SERVICE,support:$SUPPORT}"
export BILLING_ENCRYPTION_KEYS="${BILLING_ENCRYPTION_KEYS:-1:$(cat .data/encryption-key)}"
export BILLING_TEST_CLOCK="${BILLING_TEST_CLOCK:-1}"
export BILLING_GATEWAYS="${BILLING_GATEWAYS:-sim}"
PGSIM_ADDR="${PGSIM_ADDR:-127.0.0.1:8091}"
export BILLING_SIM_URL="${BILLING_SIM_URL:-http://$PGSIM_ADDR}"

# Customer emails: with no mail server of yours, a local catcher keeps every message (.data/mail/*.eml)
# and lists them on a page.
MAILCATCHER_PID=
if [ -z "${BILLING_SMTP_URL:-}" ]; then
  MAIL_SMTP_ADDR="${MAIL_SMTP_ADDR:-127.0.0.1:1025}" MAIL_HTTP_ADDR="${MAIL_HTTP_ADDR:-127.0.0.1:8025}"
  ./bin/mailcatcher -smtp "$MAIL_SMTP_ADDR" -http "$MAIL_HTTP_ADDR" -dir .data/mail > .data/mailcatcher.log 2>&1 &
  MAILCATCHER_PID=$!
  trap 'kill -TERM $MAILCATCHER_PID 2>/dev/null' EXIT
  export BILLING_SMTP_URL="smtp://$MAIL_SMTP_ADDR"
  export BILLING_MAIL_FROM="${BILLING_MAIL_FROM:-DunningWorks <billing@localhost.localdomain>}"
  MAIL_NOTE="Customer emails go to the local catcher: http://$MAIL_HTTP_ADDR (files in .data/mail/)"
else
  MAIL_NOTE="Customer emails go to ${BILLING_SMTP_URL%%://*}://...${BILLING_SMTP_URL##*@} (from ${BILLING_MAIL_FROM:-nobody: BILLING_MAIL_FROM is unset, so emails are off})"
fi

roles=$(./bin/devpg roles)   # nothing when BILLING_MIGRATION_DATABASE_URL is set: the roles are yours
eval "$roles"

./bin/billingd migrate

# billingctl needs the same settings: `source .data/env` in another terminal.
cat > .data/env <<EOT
export DATABASE_URL='$DATABASE_URL'
export BILLING_MIGRATION_DATABASE_URL='${BILLING_MIGRATION_DATABASE_URL:-$DATABASE_URL}'
export BILLING_MODE='$BILLING_MODE' BILLING_TEST_CLOCK='$BILLING_TEST_CLOCK' BILLING_GATEWAYS='$BILLING_GATEWAYS'
export BILLING_ENCRYPTION_KEYS='$BILLING_ENCRYPTION_KEYS' BILLING_SIM_URL='$BILLING_SIM_URL'
EOT
chmod 600 .data/env

./bin/pgsim -addr "$PGSIM_ADDR" -webhook-url "http://$BILLING_HTTP_ADDR/webhooks/sim" > .data/pgsim.log 2>&1 &
PGSIM_PID=$!
./bin/billingd > >(tee -a .data/billingd.log) 2>&1 &
BILLINGD_PID=$!
trap 'kill -TERM $BILLINGD_PID $PGSIM_PID $MAILCATCHER_PID 2>/dev/null; wait $BILLINGD_PID 2>/dev/null' EXIT INT TERM

for _ in $(seq 1 100); do
  curl -fsS "http://$BILLING_HTTP_ADDR/readyz" >/dev/null 2>&1 && break
  kill -0 $BILLINGD_PID 2>/dev/null || { echo "billingd exited; see .data/billingd.log"; exit 1; }
  sleep 0.2
done
curl -fsS "http://$BILLING_HTTP_ADDR/readyz" >/dev/null

cat <<EOT

billingd is ready on http://$BILLING_HTTP_ADDR  (pgsim, the gateway simulator, on http://$PGSIM_ADDR)
Tokens (kept in .data/):  admin $ADMIN
                          service $SERVICE
                          support $SUPPORT

Try it:
  export BILLING=http://$BILLING_HTTP_ADDR ADMIN=$ADMIN SERVICE=$SERVICE
  curl -s \$BILLING/v1/test-clock -H "Authorization: Bearer \$ADMIN"

$MAIL_NOTE

billingctl (migrations, API keys, support actions) reads the same settings: source .data/env first.
More in README.md ("A first subscription"). Ctrl-C stops everything.
EOT
wait $BILLINGD_PID
