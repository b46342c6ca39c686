#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_server_browser.sh — the page of `canvas serve` (GET /) in headless Chromium against the
# demo model (tools/make_demo_model.sh): the page's #selftest draws a reference image and
# submits an edit through its own form; the DOM then has the result image, the memory chart
# has samples and the status says done. A screenshot is kept next to the CLI
# (BUILD_DIR/server-page.png) for docs/server.md.
set -u
source "$(dirname "$0")/cli_lib.sh"
browser="$(command -v chromium || command -v chromium-browser || true)"
[ -n "$browser" ] || { echo "chromium missing: tools/install-deps.sh installs it"; exit 1; }
build="$(dirname "$cli")"
bash "$tests/../tools/make_demo_model.sh" "$build" "$work/demo" >/dev/null || { echo "cannot make the demo model"; exit 1; }
"$cli" serve --model "$work/demo" --listen 127.0.0.1:0 >"$work/out" 2>"$work/err" &
server=$!
trap 'kill -KILL $server 2>/dev/null; rm -rf "$work"' EXIT
for i in $(seq 100); do
    port="$(sed -n 's|^canvas serve: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$work/out" 2>/dev/null)"
    [ -n "$port" ] && break
    sleep 0.1
done
[ -n "$port" ] || { echo "the server did not start: $(cat "$work/err")"; exit 1; }

# virtual time runs the page's timers ahead, but waits while a fetch is under way: #selftest
# holds a long poll (GET /v1/jobs/{id}?wait=60) open while its job runs
chrome=("$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$work/profile"
        --window-size=1280,820 --virtual-time-budget=30000)
timeout 120 "${chrome[@]}" --dump-dom "http://127.0.0.1:$port/#selftest" >"$work/dom.html" 2>"$work/chrome.err"
check "[ \$? = 0 ]" "chromium --dump-dom failed: $(tail -3 "$work/chrome.err")"
check "grep -q '<img src=\"blob:[^\"]*\" class=\"result\">' '$work/dom.html'" "no result image in the DOM"
samples="$(sed -n 's/.*id="chart"[^>]*data-samples="\([0-9]*\)".*/\1/p' "$work/dom.html")"
check "[ '${samples:-0}' -gt 0 ]" "the memory chart has no samples"
check "grep -q 'id=\"status\"[^>]*>done in' '$work/dom.html'" "status not done: $(grep -o 'id="status"[^<]*' "$work/dom.html")"
check "grep -q 'plan: transformer' '$work/dom.html'" "no plan line on the page"
check "grep -q '64x64, seed 7, 2 steps' '$work/dom.html'" "the gallery caption lacks the parameters"

rm -f "$build/server-page.png"
timeout 120 "${chrome[@]}" --screenshot="$build/server-page.png" "http://127.0.0.1:$port/#selftest" >/dev/null 2>&1
check "[ \"\$(head -c 8 '$build/server-page.png' | od -An -tx1 | tr -d ' \n')\" = 89504e470d0a1a0a ]" "no screenshot"
check "curl -s 'http://127.0.0.1:$port/metrics' | grep -q 'canvas_jobs_total{outcome=\"done\"} 2'" "the page's two edits did not both complete"
kill -TERM $server
wait $server
check "[ \$? = 0 ]" "SIGTERM exit status"
summary
