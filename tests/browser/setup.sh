# Sourced by the browser tests (tests/console/run.sh, tests/sdk/browser_sdk.sh): Debian's
# Chromium, and pinned npm packages in a folder of target/, installed when missing.
# Playwright's own browser downloads cannot work here; playwright-core drives the system
# Chromium and downloads nothing.
#   source tests/browser/setup.sh
#   ensure_chromium
#   ensure_npm_packages DIR NAME "pkg@version" ...   # leaves DIR/node_modules

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
PLAYWRIGHT_CORE_VERSION=1.65.2   # needs Node >= 20

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_chromium() {
    if [ ! -x "$CHROMIUM" ]; then
        echo "browser tests: installing Debian's chromium"
        local started
        started=$(date +%s)
        if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; then
            as_root apt-get update -q
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium
        fi
        echo "browser tests: chromium installed in $(( $(date +%s) - started )) s"
    fi
    "$CHROMIUM" --version 2>/dev/null
}

# Installs exactly the given "name@version" packages into DIR, unless DIR already holds
# that set (recorded in DIR/installed.txt).
ensure_npm_packages() {
    local dir=$1 name=$2
    shift 2
    local wanted="$*"
    if [ "$(cat "$dir/installed.txt" 2>/dev/null)" = "$wanted" ] && [ -d "$dir/node_modules" ]; then
        return
    fi
    echo "browser tests: installing $wanted into ${dir#"$PWD"/}"
    mkdir -p "$dir"
    local deps="" spec pkg version
    for spec in "$@"; do
        pkg=${spec%@*}
        version=${spec##*@}
        deps="$deps${deps:+, }\"$pkg\": \"$version\""
    done
    cat >"$dir/package.json" <<JSON
{
  "name": "$name",
  "private": true,
  "description": "Written by tests/browser/setup.sh for a browser test.",
  "dependencies": { $deps }
}
JSON
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error)
    echo "$wanted" >"$dir/installed.txt"
}

# A free TCP port on 127.0.0.1.
free_port() {
    node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close() })'
}

# Waits until the server started as PID answers URL/health (at most 30 s); fails with
# LABEL's message if it never does or exits first.
wait_for_health() {
    local url=$1 pid=$2 label=$3
    for _ in $(seq 1 150); do
        if curl -fsS -o /dev/null "$url/health" 2>/dev/null; then return 0; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    echo "$label: the server did not answer $url/health"
    return 1
}
