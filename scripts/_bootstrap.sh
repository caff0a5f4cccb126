# shellcheck shell=bash
# Shared set-up for scripts/test and scripts/serve. Source it; do not run it.
#
#   eduledger_venv       create .venv if missing; pip install -e '.[dev]' when
#                        pyproject.toml (or the Python) changed since the last install
#   eduledger_anvil      install anvil from npm into .tools/; exports EDULEDGER_ANVIL_BIN
#   eduledger_xapi_client  install the independent xAPI client (npm @xapi/xapi) into .tools/
#                        for tests/test_records_xapi.py
#   eduledger_postgres   start a throwaway PostgreSQL cluster on 127.0.0.1 (stopped when
#                        the shell exits); exports EDULEDGER_TEST_POSTGRES_URL
#   eduledger_cjk_font   install fonts-noto-cjk (the Chinese text of signature stamps)
#   eduledger_openid4vc  install the OpenID4VC/SD-JWT VC npm packages of the test wallet into
#                        .tools/; exports EDULEDGER_NODE_MODULES
#   eduledger_chromium   install Debian's chromium (and the CJK font) for the browser
#                        tests; exports EDULEDGER_CHROMIUM
#
# Every function fails loudly (returns non-zero with a reason on stderr).

EDULEDGER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EDULEDGER_VENV="$EDULEDGER_ROOT/.venv"
EDULEDGER_TOOLS="$EDULEDGER_ROOT/.tools"
# Pinned so that every machine and CI run the same node; bump deliberately.
EDULEDGER_ANVIL_VERSION="${EDULEDGER_ANVIL_VERSION:-1.7.1}"

say() { printf '== %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
_now() { date +%s; }

_as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "need root to run: $*"
  fi
}

# Several checkouts' runs may bootstrap the same tree at once: installs take a lock.
_lock() {
  command -v flock >/dev/null 2>&1 || return 0
  mkdir -p "$EDULEDGER_TOOLS"
  exec 9>"$EDULEDGER_TOOLS/.bootstrap.lock"
  flock -n 9 || { say "waiting for another run's install to finish"; flock 9; }
}
_unlock() {
  command -v flock >/dev/null 2>&1 || return 0
  flock -u 9 2>/dev/null || true
  exec 9>&-
}

# ----------------------------------------------------------------------------- venv

_pick_python() {
  local cand
  for cand in "${PYTHON:-}" python3.11 python3; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 \
      && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$cand"; return 0
    fi
  done
  return 1
}

eduledger_venv() {
  _lock
  _eduledger_venv
  _unlock
  export VIRTUAL_ENV="$EDULEDGER_VENV"
  export PATH="$EDULEDGER_VENV/bin:$PATH"
}

_eduledger_venv() {
  local py stamp want have
  if [ ! -x "$EDULEDGER_VENV/bin/python" ] || ! "$EDULEDGER_VENV/bin/python" -c '' 2>/dev/null; then
    py="$(_pick_python)" || die "no Python >= 3.11 found (set PYTHON=/path/to/python3.11)"
    say "creating .venv with $("$py" --version 2>&1)"
    rm -rf "$EDULEDGER_VENV"
    "$py" -m venv "$EDULEDGER_VENV" || die "python -m venv failed"
  fi
  stamp="$EDULEDGER_VENV/.eduledger-install-stamp"
  want="$({ cat "$EDULEDGER_ROOT/pyproject.toml"; "$EDULEDGER_VENV/bin/python" -VV; } \
    | sha256sum | cut -d' ' -f1)"
  have="$(cat "$stamp" 2>/dev/null || true)"
  if [ "$want" != "$have" ]; then
    say "installing Python dependencies (pip install -e '.[dev]')"
    local t0; t0=$(_now)
    rm -f "$stamp"
    # (The grep drops pip's noise about configured local indexes that do not exist.)
    (set -o pipefail; cd "$EDULEDGER_ROOT" && "$EDULEDGER_VENV/bin/python" -m pip install \
        --disable-pip-version-check --no-input --progress-bar off -q -e '.[dev]' 2>&1 \
        | { grep -v -e 'is ignored: it is neither a file nor a directory' || true; }) \
      || die "pip install -e '.[dev]' failed"
    printf '%s\n' "$want" >"$stamp"
    say "Python dependencies installed in $(( $(_now) - t0 ))s"
  fi
}

# ----------------------------------------------------------------------------- anvil

_anvil_platform_pkg() {
  local os arch
  case "$(uname -s)" in
    Linux) os=linux ;; Darwin) os=darwin ;; *) return 1 ;;
  esac
  case "$(uname -m)" in
    x86_64|amd64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) return 1 ;;
  esac
  printf '@foundry-rs/anvil-%s-%s' "$os" "$arch"
}

_anvil_installed_version() {
  local pj="$EDULEDGER_TOOLS/node_modules/@foundry-rs/anvil/package.json"
  [ -f "$pj" ] && sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pj" | head -n1
}

_anvil_bin_path() {
  local pkg
  # Prefer the native binary of the platform package: no node wrapper in between, so
  # signals reach anvil itself. Fall back to the npm bin shim.
  if pkg="$(_anvil_platform_pkg)" && [ -x "$EDULEDGER_TOOLS/node_modules/$pkg/bin/anvil" ]; then
    printf '%s' "$EDULEDGER_TOOLS/node_modules/$pkg/bin/anvil"
  elif [ -x "$EDULEDGER_TOOLS/node_modules/.bin/anvil" ]; then
    printf '%s' "$EDULEDGER_TOOLS/node_modules/.bin/anvil"
  else
    return 1
  fi
}

_anvil_works() {
  local bin
  bin="$(_anvil_bin_path)" || return 1
  "$bin" --version 2>/dev/null | grep -q "Version: $EDULEDGER_ANVIL_VERSION"
}

eduledger_anvil() {
  _lock
  _eduledger_anvil
  _unlock
  EDULEDGER_ANVIL_BIN="$(_anvil_bin_path)"
  export EDULEDGER_ANVIL_BIN
  say "anvil: $("$EDULEDGER_ANVIL_BIN" --version | head -n1) ($EDULEDGER_ANVIL_BIN)"
}

_eduledger_anvil() {
  if [ "$(_anvil_installed_version)" != "$EDULEDGER_ANVIL_VERSION" ] || ! _anvil_works; then
    say "installing anvil (npm @foundry-rs/anvil@$EDULEDGER_ANVIL_VERSION into .tools/)"
    command -v npm >/dev/null 2>&1 || die "npm not found: anvil is installed with npm"
    local pkg t0; t0=$(_now)
    pkg="$(_anvil_platform_pkg)" || die "anvil has no npm build for $(uname -s)/$(uname -m)"
    mkdir -p "$EDULEDGER_TOOLS"
    # The platform package carries the binary; name it too so that it resolves even where
    # optional dependencies are omitted by configuration.
    npm install --prefix "$EDULEDGER_TOOLS" --no-audit --no-fund --include=optional \
        --loglevel=error "@foundry-rs/anvil@$EDULEDGER_ANVIL_VERSION" \
        "$pkg@$EDULEDGER_ANVIL_VERSION" </dev/null \
      || die "npm install @foundry-rs/anvil@$EDULEDGER_ANVIL_VERSION failed"
    _anvil_works || die "anvil installed but '$(_anvil_bin_path || echo anvil) --version' \
does not report $EDULEDGER_ANVIL_VERSION"
    say "anvil installed in $(( $(_now) - t0 ))s"
  fi
}

# ----------------------------------------------------------------------------- xAPI client

# An xAPI 2.0 client that is not ours, to check the learning record store with.
EDULEDGER_XAPI_CLIENT_VERSION="${EDULEDGER_XAPI_CLIENT_VERSION:-3.0.3}"

eduledger_xapi_client() {
  local pj="$EDULEDGER_TOOLS/node_modules/@xapi/xapi/package.json"
  if ! [ -f "$pj" ] || ! grep -q "\"version\": \"$EDULEDGER_XAPI_CLIENT_VERSION\"" "$pj"; then
    say "installing the xAPI client (npm @xapi/xapi@$EDULEDGER_XAPI_CLIENT_VERSION into .tools/)"
    command -v npm >/dev/null 2>&1 || die "npm not found: the xAPI client is installed with npm"
    mkdir -p "$EDULEDGER_TOOLS"
    _lock
    npm install --prefix "$EDULEDGER_TOOLS" --no-audit --no-fund --loglevel=error \
        "@xapi/xapi@$EDULEDGER_XAPI_CLIENT_VERSION" </dev/null \
      || { _unlock; die "npm install @xapi/xapi@$EDULEDGER_XAPI_CLIENT_VERSION failed"; }
    _unlock
  fi
}

# ----------------------------------------------------------------------------- postgres

_pg_bindir() {
  local d
  # Newest version first.
  for d in $(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V -r); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
      printf '%s' "$d"; return 0
    fi
  done
  d="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
  if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
    printf '%s' "$d"; return 0
  fi
  return 1
}

_free_port() {
  local py="$EDULEDGER_VENV/bin/python"
  [ -x "$py" ] || py=python3
  "$py" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

_PG_DIR=""
_PG_BIN=""
_PG_USER=""

# Runs a PostgreSQL server program as the cluster's (non-root) owner, from its directory.
_pg_run() {
  if [ -n "$_PG_USER" ]; then
    (cd "$_PG_DIR" && runuser -u "$_PG_USER" -- "$@")
  else
    (cd "$_PG_DIR" && "$@")
  fi
}

eduledger_postgres_stop() {
  [ -n "$_PG_DIR" ] || return 0
  if [ -f "$_PG_DIR/data/postmaster.pid" ]; then
    say "stopping PostgreSQL"
    _pg_run "$_PG_BIN/pg_ctl" -D "$_PG_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1 \
      || _pg_run "$_PG_BIN/pg_ctl" -D "$_PG_DIR/data" -m immediate -w -t 30 stop >/dev/null 2>&1 \
      || printf 'warning: could not stop PostgreSQL in %s\n' "$_PG_DIR" >&2
  fi
  rm -rf "$_PG_DIR"
  _PG_DIR=""
}

# Clusters left by a run that was killed before its trap ran (its owner pid is gone).
_pg_reap_stale() {
  local d owner
  for d in /tmp/eduledger-pg.*; do
    [ -d "$d" ] || continue
    owner="$(cat "$d/owner.pid" 2>/dev/null || true)"
    [ -n "$owner" ] && kill -0 "$owner" 2>/dev/null && continue
    if [ -f "$d/data/postmaster.pid" ]; then
      local pid
      pid="$(head -n1 "$d/data/postmaster.pid" 2>/dev/null || true)"
      if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then
        kill -INT "$pid" 2>/dev/null || true
        sleep 1
      fi
    fi
    rm -rf "$d"
  done
}

_pg_ensure_installed() {
  if _PG_BIN="$(_pg_bindir)"; then return 0; fi
  say "installing PostgreSQL (apt-get install postgresql)"
  command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed and apt-get is not available"
  local t0; t0=$(_now)
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null \
    || die "apt-get update failed"
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql </dev/null >/dev/null \
    || die "apt-get install postgresql failed"
  _PG_BIN="$(_pg_bindir)" || die "PostgreSQL installed but initdb/pg_ctl not found"
  say "PostgreSQL installed in $(( $(_now) - t0 ))s"
}

# wrk, the HTTP load generator the credential benchmark measures the server with.
eduledger_wrk() {
  command -v wrk >/dev/null 2>&1 && return 0
  command -v apt-get >/dev/null 2>&1 || die "wrk is not installed and apt-get is not available"
  say "installing wrk (apt-get install wrk)"
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null || die "apt-get update failed"
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      wrk </dev/null >/dev/null || die "apt-get install wrk failed"
}

# Noto Sans CJK: the stamps of PDF signatures say who signed in Chinese and English.
eduledger_cjk_font() {
  [ -f /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc ] && return 0
  command -v apt-get >/dev/null 2>&1 || { say "no CJK font and no apt-get: stamps in English only"; return 0; }
  say "installing fonts-noto-cjk (apt-get install fonts-noto-cjk)"
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null || die "apt-get update failed"
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      fonts-noto-cjk </dev/null >/dev/null || die "apt-get install fonts-noto-cjk failed"
}

# Debian's chromium: pages are tested as people see them (tests/browser.py drives it
# through Playwright). With the CJK font, Chinese text renders in the screenshots.
eduledger_chromium() {
  local bin
  eduledger_cjk_font
  for bin in "${EDULEDGER_CHROMIUM:-}" /usr/bin/chromium; do
    if [ -n "$bin" ] && [ -x "$bin" ]; then export EDULEDGER_CHROMIUM="$bin"; return 0; fi
  done
  command -v apt-get >/dev/null 2>&1 || die "chromium is not installed and apt-get is not available"
  say "installing chromium (apt-get install chromium)"
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null || die "apt-get update failed"
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      chromium </dev/null >/dev/null || die "apt-get install chromium failed"
  [ -x /usr/bin/chromium ] || die "chromium installed but /usr/bin/chromium is missing"
  export EDULEDGER_CHROMIUM=/usr/bin/chromium
}

eduledger_postgres() {
  local t0 port attempt db=eduledger_test user=eduledger
  t0=$(_now)
  _pg_ensure_installed
  _pg_reap_stale
  _PG_DIR="$(mktemp -d /tmp/eduledger-pg.XXXXXX)" || die "mktemp failed"
  echo "$$" >"$_PG_DIR/owner.pid"
  chmod 0755 "$_PG_DIR"
  _PG_USER=""
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root: run it as the postgres user (or one we make).
    if id -u postgres >/dev/null 2>&1; then
      _PG_USER=postgres
    else
      id -u eduledger-pg >/dev/null 2>&1 \
        || useradd --system --no-create-home --shell /usr/sbin/nologin eduledger-pg \
        || die "cannot create a user to run PostgreSQL"
      _PG_USER=eduledger-pg
    fi
    command -v runuser >/dev/null 2>&1 || die "runuser not found (util-linux)"
    chown "$_PG_USER" "$_PG_DIR"
  fi
  say "starting PostgreSQL ($("$_PG_BIN/postgres" --version | sed 's/.*) //')) in $_PG_DIR"
  _pg_run "$_PG_BIN/initdb" -D "$_PG_DIR/data" -U "$user" --auth=trust -E UTF8 --locale=C \
      --no-sync >"$_PG_DIR/initdb.log" 2>&1 \
    || { cat "$_PG_DIR/initdb.log" >&2; die "initdb failed"; }
  for attempt in 1 2 3; do
    port="$(_free_port)" || die "cannot find a free port"
    if _pg_run "$_PG_BIN/pg_ctl" -D "$_PG_DIR/data" -l "$_PG_DIR/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$_PG_DIR \
-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >/dev/null 2>&1; then
      break
    fi
    if [ "$attempt" = 3 ]; then
      tail -n 30 "$_PG_DIR/server.log" >&2 2>/dev/null || true
      die "PostgreSQL did not start (log above)"
    fi
  done
  "$_PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U "$user" "$db" \
    || die "createdb $db failed"
  export EDULEDGER_TEST_POSTGRES_URL="postgresql+psycopg://$user@127.0.0.1:$port/$db"
  say "PostgreSQL ready at 127.0.0.1:$port (database $db) in $(( $(_now) - t0 ))s"
}

# ----------------------------------------------------------------------------- openid4vc

# Independent implementations of OpenID4VCI / OpenID4VP / SD-JWT VC that play the wallet in
# tests/test_openid4vc.py (tests/js/wallet.mjs). Pinned; bump deliberately.
EDULEDGER_OPENID4VC_PACKAGES=(
  "@openid4vc/openid4vci@0.4.6" "@openid4vc/openid4vp@0.4.6" "@openid4vc/oauth2@0.4.6"
  "@openid4vc/utils@0.4.6" "@sd-jwt/sd-jwt-vc@0.19.0" "@sd-jwt/crypto-nodejs@0.19.0"
  "jose@6.2.17"
)

_openid4vc_installed() {
  local spec name version pj
  for spec in "${EDULEDGER_OPENID4VC_PACKAGES[@]}"; do
    name="${spec%@*}"; version="${spec##*@}"
    pj="$EDULEDGER_TOOLS/node_modules/$name/package.json"
    [ -f "$pj" ] || return 1
    grep -q "\"version\": *\"$version\"" "$pj" || return 1
  done
}

eduledger_openid4vc() {
  _lock
  if ! _openid4vc_installed; then
    say "installing the OpenID4VC test wallet's packages (npm, into .tools/)"
    command -v npm >/dev/null 2>&1 || die "npm not found: the OpenID4VC test wallet is installed with npm"
    mkdir -p "$EDULEDGER_TOOLS"
    npm install --prefix "$EDULEDGER_TOOLS" --no-audit --no-fund --loglevel=error \
        "${EDULEDGER_OPENID4VC_PACKAGES[@]}" </dev/null \
      || die "npm install of the OpenID4VC packages failed"
    _openid4vc_installed || die "the OpenID4VC packages installed but not at the pinned versions"
  fi
  _unlock
  export EDULEDGER_NODE_MODULES="$EDULEDGER_TOOLS/node_modules"
}
