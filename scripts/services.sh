#!/usr/bin/env bash
# services.sh starts the services that certinv's backend tests run against:
# PostgreSQL and Redis from Debian's packages, and Azurite (the Azure Storage
# emulator) from npm. It installs what is missing, starts each on a free
# loopback port with its data in a temporary folder, waits until each
# answers, and writes their connection settings as shell exports:
#
#   CERTINV_TEST_POSTGRES  postgres://... URL of a superuser
#   CERTINV_TEST_AZURE     Azurite connection string (devstoreaccount1)
#   CERTINV_TEST_REDIS     redis://... URL
#
# Usage (as root, on Debian 12; it is idempotent):
#
#   scripts/services.sh [start]   install and start what is not running
#   . "$(scripts/services.sh env)" export the settings into this shell
#   scripts/services.sh stop      stop the services and remove their data
#
# Sourcing the script (". scripts/services.sh") runs start and exports the
# settings into the sourcing shell. The state lives in $CERTINV_SERVICES_DIR
# (default /var/tmp/certinv-services); the settings in its file "env".
#
# PostgreSQL refuses to run as root: its cluster belongs to the system user
# certinv-pg, made if missing. Nothing is persisted beyond the state folder:
# fsync is off and Redis saves nothing, since the data is for tests only.

# Pinned: the newest Azurite whose engines field accepts Node.js 20 (3.36 and
# later want Node.js 21 or 22).
CERTINV_AZURITE_VERSION=${CERTINV_AZURITE_VERSION:-3.35.0}
CERTINV_SERVICES_DIR=${CERTINV_SERVICES_DIR:-/var/tmp/certinv-services}
CERTINV_AZURITE_DIR=${CERTINV_AZURITE_DIR:-/opt/azurite-$CERTINV_AZURITE_VERSION}
CERTINV_PG_USER=${CERTINV_PG_USER:-certinv-pg}

# Azurite's one well-known development account and key (public, documented
# by Microsoft for the emulator; not a secret).
_svc_azure_account=devstoreaccount1
_svc_azure_key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

_svc_log() { echo "services: $*" >&2; }
_svc_die() { _svc_log "error: $*"; return 1; }

# _svc_port_open PORT: true when something accepts connections on 127.0.0.1:PORT.
_svc_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# _svc_free_port: prints a port on which nothing listens, from a random start.
_svc_free_port() {
  local p=$((20000 + RANDOM % 20000)) i
  for ((i = 0; i < 200; i++)); do
    if ! _svc_port_open "$p" && ! grep -qs "=$p\$" "$CERTINV_SERVICES_DIR/ports"; then
      echo "$p"; return 0
    fi
    p=$((p + 1))
  done
  _svc_die "no free port found"
}

# _svc_wait WHAT SECONDS CMD...: runs CMD until it succeeds, at most SECONDS.
_svc_wait() {
  local what=$1 secs=$2 i; shift 2
  for ((i = 0; i < secs * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  _svc_die "$what did not answer within ${secs}s"
}

_svc_pg_bin() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/pg_ctl" ] && [ -x "$d/initdb" ]; then echo "$d"; return 0; fi
  done
  return 1
}

_svc_apt_updated=
_svc_apt_install() {
  if [ -z "$_svc_apt_updated" ]; then
    _svc_log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
    _svc_apt_updated=1
  fi
  _svc_log "apt-get install $*"
  # policy-rc.d-less containers try to start the packaged services; they may
  # fail to, which is not ours to fix: we start our own instances.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

_svc_install() {
  local pkgs=()
  _svc_pg_bin >/dev/null || pkgs+=(postgresql)
  command -v psql >/dev/null || pkgs+=(postgresql-client)
  command -v redis-server >/dev/null || pkgs+=(redis-server)
  command -v redis-cli >/dev/null || pkgs+=(redis-tools)
  command -v npm >/dev/null || pkgs+=(nodejs npm)
  if [ ${#pkgs[@]} -gt 0 ]; then _svc_apt_install "${pkgs[@]}" || return 1; fi
  if ! id -u "$CERTINV_PG_USER" >/dev/null 2>&1; then
    _svc_log "adding system user $CERTINV_PG_USER"
    useradd --system --no-create-home --shell /usr/sbin/nologin "$CERTINV_PG_USER" || return 1
  fi
  if [ ! -x "$CERTINV_AZURITE_DIR/node_modules/.bin/azurite-blob" ]; then
    _svc_log "npm install azurite@$CERTINV_AZURITE_VERSION into $CERTINV_AZURITE_DIR"
    mkdir -p "$CERTINV_AZURITE_DIR" || return 1
    npm install --prefix "$CERTINV_AZURITE_DIR" --no-audit --no-fund --loglevel=error \
      "azurite@$CERTINV_AZURITE_VERSION" >/dev/null || return 1
  fi
}

_svc_as_pg() { runuser -u "$CERTINV_PG_USER" -- "$@"; }

_svc_start_postgres() {
  local dir=$CERTINV_SERVICES_DIR/postgres bin port
  bin=$(_svc_pg_bin) || { _svc_die "no PostgreSQL server found"; return 1; }
  if [ -f "$dir/port" ] && _svc_as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    port=$(cat "$dir/port")
  else
    rm -rf "$dir"
    mkdir -p "$dir/socket" || return 1
    chown -R "$CERTINV_PG_USER" "$dir"
    _svc_as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; _svc_die "initdb failed"; return 1; }
    port=$(_svc_free_port) || return 1
    echo "$port" >"$dir/port"
    echo "postgres=$port" >>"$CERTINV_SERVICES_DIR/ports"
    # Tests make a database per test: allow many connections, and trade
    # durability (test data) for speed.
    _svc_as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start -o \
      "-p $port -k $dir/socket -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB" \
      >/dev/null || { cat "$dir/server.log" >&2; _svc_die "PostgreSQL did not start"; return 1; }
  fi
  _svc_wait PostgreSQL 60 psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atc 'SELECT 1' || return 1
  _svc_pg_url="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
}

_svc_start_redis() {
  local dir=$CERTINV_SERVICES_DIR/redis port
  if [ -f "$dir/port" ] && redis-cli -p "$(cat "$dir/port")" ping 2>/dev/null | grep -q PONG; then
    port=$(cat "$dir/port")
  else
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null
    rm -rf "$dir"
    mkdir -p "$dir" || return 1
    port=$(_svc_free_port) || return 1
    echo "$port" >"$dir/port"
    echo "redis=$port" >>"$CERTINV_SERVICES_DIR/ports"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --dir "$dir" \
      --daemonize yes --pidfile "$dir/pid" --logfile "$dir/server.log" || { _svc_die "redis-server did not start"; return 1; }
  fi
  _svc_wait Redis 30 sh -c "redis-cli -p $port ping | grep -q PONG" || return 1
  _svc_redis_url="redis://127.0.0.1:$port/0"
}

_svc_start_azurite() {
  local dir=$CERTINV_SERVICES_DIR/azurite port
  if [ -f "$dir/port" ] && [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null && _svc_port_open "$(cat "$dir/port")"; then
    port=$(cat "$dir/port")
  else
    [ -f "$dir/pid" ] && kill "$(cat "$dir/pid")" 2>/dev/null
    rm -rf "$dir"
    mkdir -p "$dir/data" || return 1
    port=$(_svc_free_port) || return 1
    echo "$port" >"$dir/port"
    echo "azurite=$port" >>"$CERTINV_SERVICES_DIR/ports"
    # setsid: the emulator outlives this script and is stopped by "stop".
    setsid nohup "$CERTINV_AZURITE_DIR/node_modules/.bin/azurite-blob" \
      --blobHost 127.0.0.1 --blobPort "$port" --location "$dir/data" \
      --skipApiVersionCheck --loose --silent >"$dir/server.log" 2>&1 </dev/null &
    echo $! >"$dir/pid"
  fi
  _svc_wait Azurite 60 _svc_port_open "$port" || { cat "$dir/server.log" >&2; return 1; }
  _svc_azure="DefaultEndpointsProtocol=http;AccountName=$_svc_azure_account;AccountKey=$_svc_azure_key;BlobEndpoint=http://127.0.0.1:$port/$_svc_azure_account;"
}

_svc_start() {
  local t0=$SECONDS
  if [ "$(id -u)" != 0 ]; then _svc_die "run as root (it installs packages and adds a user)"; return 1; fi
  mkdir -p "$CERTINV_SERVICES_DIR" || return 1
  chmod 755 "$CERTINV_SERVICES_DIR"
  _svc_install || return 1
  _svc_start_postgres || return 1
  _svc_start_redis || return 1
  _svc_start_azurite || return 1
  {
    echo "# certinv test services, written by scripts/services.sh; stop with: scripts/services.sh stop"
    printf 'export CERTINV_TEST_POSTGRES=%q\n' "$_svc_pg_url"
    printf 'export CERTINV_TEST_AZURE=%q\n' "$_svc_azure"
    printf 'export CERTINV_TEST_REDIS=%q\n' "$_svc_redis_url"
  } >"$CERTINV_SERVICES_DIR/env.tmp" && mv "$CERTINV_SERVICES_DIR/env.tmp" "$CERTINV_SERVICES_DIR/env"
  _svc_log "ready in $((SECONDS - t0))s; settings in $CERTINV_SERVICES_DIR/env"
}

_svc_stop() {
  local dir=$CERTINV_SERVICES_DIR bin
  [ -d "$dir" ] || return 0
  if [ -d "$dir/postgres/data" ] && bin=$(_svc_pg_bin); then
    _svc_as_pg "$bin/pg_ctl" -D "$dir/postgres/data" -m immediate -w stop >/dev/null 2>&1
  fi
  if [ -f "$dir/redis/port" ]; then
    redis-cli -p "$(cat "$dir/redis/port")" shutdown nosave >/dev/null 2>&1
  fi
  if [ -f "$dir/azurite/pid" ]; then
    kill "$(cat "$dir/azurite/pid")" 2>/dev/null
  fi
  rm -rf "$dir"
  _svc_log "stopped"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Sourced: start, then export the settings into the caller's shell.
  _svc_start && . "$CERTINV_SERVICES_DIR/env"
else
  set -uo pipefail
  case "${1:-start}" in
  start) _svc_start ;;
  stop) _svc_stop ;;
  env) echo "$CERTINV_SERVICES_DIR/env" ;;
  *) echo "usage: $0 [start|stop|env]" >&2; exit 2 ;;
  esac
fi
