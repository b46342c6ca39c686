#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_scaleout.sh — `canvas serve --queue` + 3 `canvas worker`s on a real redis-server
# (a loopback port, a scratch folder, append-only file with appendfsync always), on the
# bundled tiny model (docs/scale-out.md). Checks: 30 jobs all complete, each pixel-identical
# to `canvas edit` with the same seed and flags, each of the 3 workers starting some, while a
# 4th with too little room (--max-pixels) leaves every job to them; a worker killed with
# SIGKILL mid-job → its job completes on another worker, stored once; a worker stalled
# (SIGSTOP) past the visibility timeout loses its job to another and, let go on, stops it; a DELETE reaches the
# worker running the job; redis restarted mid-run → front and workers reconnect, every
# accepted job completes (a job offered while redis is down answers 503); a poison entry
# lands in NAME:dead after --max-tries; no result stored twice, no done event twice, nothing
# left pending; SIGTERM stops the front and the workers with exit 0 (under ASan: no leak).
# Every wait is bounded; every process is killed on exit.
set -u
source "$(dirname "$0")/cli_lib.sh"
command -v curl >/dev/null || { echo "curl missing (tools/install-deps.sh installs it)"; exit 1; }
if "$cli" worker --model /nonexistent --queue redis://127.0.0.1:1/q 2>&1 | grep -q "built without hiredis"; then
    echo "skipped: this canvas was built without hiredis (libhiredis-dev; tools/install-deps.sh installs it)"
    exit 0
fi
command -v redis-server >/dev/null && command -v redis-cli >/dev/null ||
    { echo "redis-server / redis-cli missing (tools/install-deps.sh installs them)"; exit 1; }
model="$tests/golden/models/edit-tiny"
case_dir="$tests/golden/cases/edit-cfg"
embeds="$case_dir/inputs.safetensors"
image="$case_dir/image0.png"
form=(-F "image=@$image" -F "prompt_embeds=@$embeds" -F vae_area=4096)
pids=()
cleanup() {
    local p
    for p in "${pids[@]}" ${redis_pid:-}; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$work/redis"
rcli() { redis-cli -h 127.0.0.1 -p "$port" --raw "$@"; }
start_redis() {
    local i
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly yes --appendfsync always --dir "$work/redis" \
        >>"$work/redis.log" 2>&1 &
    redis_pid=$!
    disown $!
    for i in $(seq 50); do [ "$(rcli PING 2>/dev/null)" = PONG ] && return; sleep 0.1; done
    echo "redis-server did not start: $(tail -5 "$work/redis.log")"
    exit 1
}
start_redis
queue="redis://127.0.0.1:$port/q"

# an unreachable queue: a clear error at start, exit 1
expect 1 "cannot connect" -- serve --model "$model" --listen 127.0.0.1:0 --queue redis://127.0.0.1:1/q
expect 2 "redis://HOST:PORT/NAME" -- worker --model "$model" --queue redis://127.0.0.1/q
expect 2 "--listen is a canvas serve flag" -- worker --model "$model" --queue redis://127.0.0.1:1/q --listen 127.0.0.1:0
expect 2 "--jobs-kept is a canvas serve flag" -- worker --model "$model" --queue redis://127.0.0.1:1/q --jobs-kept 3

for w in 1 2 3; do
    "$cli" worker --model "$model" --queue "$queue" --name "w$w" --visibility 2 --max-tries 3 \
        >"$work/w$w.out" 2>"$work/w$w.err" &
    pids+=($!)
    eval "pid_w$w=$!"
done
# a worker with room for 1024 pixels only: it leaves every job here (4096 pixels) to the others
"$cli" worker --model "$model" --queue "$queue" --name small --max-pixels 1024 --visibility 2 >"$work/small.out" 2>"$work/small.err" &
pids+=($!)
pid_small=$!
"$cli" serve --model "$model" --listen 127.0.0.1:0 --queue 64 --queue "$queue" >"$work/front.out" 2>"$work/front.err" &
pids+=($!)
pid_front=$!
front=""
for i in $(seq 100); do
    front="$(sed -n 's|^canvas serve: listening on http://\(127.0.0.1:[0-9]*\)$|\1|p' "$work/front.out")"
    [ -n "$front" ] && break
    sleep 0.1
done
[ -n "$front" ] || { echo "the front did not start: $(cat "$work/front.err")"; exit 1; }
u="http://$front"
for w in 1 2 3; do
    for i in $(seq 100); do [ "$(rcli HGET q:worker:w$w model)" = edit-tiny ] && break; sleep 0.1; done
done
check "[ \"\$(rcli HGET q:worker:w3 formats)\" = png ] && [ \"\$(rcli HGET q:worker:w3 max_pixels)\" = 16777216 ] && [ \"\$(rcli TTL q:worker:w3)\" -gt 0 ]" \
    "worker w3's advertisement: $(rcli HGETALL q:worker:w3 | tr '\n' ' ')"

# pixels.py from test_server.sh: compares decoded pixels (the PNGs' text chunks differ)
sed -n "/^cat >\"\$work\/pixels.py\" <<'PY'$/,/^PY$/p" "$tests/test_server.sh" | sed '1d;$d' >"$work/pixels.py"

for seed in $(seq 5); do
    "$cli" edit --model "$model" --image "$image" --prompt-embeds "$embeds" --steps 2 --vae-area 4096 --seed "$seed" \
        -o "$work/ref$seed.png" 2>/dev/null || bad "canvas edit --seed $seed failed"
done
# the job a worker is killed in: 200 steps at 256x256 (0.78 s through canvas edit in Release on
# the 2-core build machine; 128x128 took 0.27 s), far more than the first step after which the
# kill comes, on a faster machine too
"$cli" edit --model "$model" --image "$image" --prompt-embeds "$embeds" --steps 200 --vae-area 4096 --seed 77 \
    --width 256 --height 256 -o "$work/ref77.png" 2>/dev/null || bad "canvas edit --seed 77 failed"

# submit SEED [STEPS [SIZE]]: POST /v1/jobs, prints the job id (nothing when not accepted)
submit() {
    curl -s --max-time 10 -X POST "${form[@]}" -F seed="$1" -F steps="${2:-2}" -F size="${3:-auto}" "$u/v1/jobs" |
        sed -n 's/.*"id":"\(job-[0-9a-f]*\)".*/\1/p'
}
# finish ID SEED: waits for the job (bounded), fetches its PNG; 0 when done
finish() {
    local state
    state="$(curl -s --max-time 70 "$u/v1/jobs/$1?wait=60" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')"
    [ "$state" = done ] && curl -s --max-time 10 -o "$work/$1.png" "$u/v1/jobs/$1/image.png"
}

# --- 30 jobs over 3 workers, each the same pixels as canvas edit
ids=()
for n in $(seq 30); do ids+=("$(submit $(( (n - 1) % 5 + 1 )))"); done
pairs=()
accepted=0
for n in $(seq 30); do
    id="${ids[$((n - 1))]}"
    [ -n "$id" ] || continue
    accepted=$((accepted + 1))
    finish "$id" || bad "job $n ($id) did not complete: $(curl -s "$u/v1/jobs/$id")"
    pairs+=("$work/$id.png" "$work/ref$(( (n - 1) % 5 + 1 )).png")
done
check "[ $accepted = 30 ]" "$accepted of 30 jobs accepted"
identical="$(python3 "$work/pixels.py" same "${pairs[@]}")"
check "[ '$identical' = 30 ]" "$identical of 30 queued jobs are pixel-identical to canvas edit"
# who started what: each of the 3 workers some jobs, the small one none
rcli XRANGE q:events - + | awk 'p == "event" { e = $0 } p == "worker" && e == "started" { n[$0]++ } { p = $0 }
    END { for (k in n) print k, n[k] }' | sort >"$work/started.txt"
check "[ \"\$(cut -d' ' -f1 '$work/started.txt' | tr '\n' ' ')\" = 'w1 w2 w3 ' ]" "jobs started by: $(tr '\n' ' ' <"$work/started.txt")"
check "[ \"\$(awk '{ s += \$2 } END { print s }' '$work/started.txt')\" = 30 ]" "30 jobs, started: $(tr '\n' ' ' <"$work/started.txt")"
check "grep -q 'asks for 4096 pixels, over this worker.s --max-pixels 1024: left to another' '$work/small.err'" \
    "the small worker left no job to the others: $(tail -3 "$work/small.err")"

# --- the synchronous OpenAI endpoint through the queue
code="$(curl -s --max-time 30 -o "$work/sync.json" -w '%{http_code}' "${form[@]}" -F steps=2 -F seed=4 "$u/v1/images/edits")"
check "[ $code = 200 ] && python3 '$work/pixels.py' same '$work/sync.json' '$work/ref4.png' | grep -qx 1" \
    "POST /v1/images/edits through the queue: $code, or pixels differ"

# --- SIGKILL a worker mid-job: the job completes on another one
# running_on ID [EXCEPT]: the number of the worker (not EXCEPT) that advertises job ID as
# running, once it has done a step (waits up to 5 s and 4 s); nothing when none does
running_on() {
    local i w found=""
    for i in $(seq 100); do
        for w in 1 2 3; do [ "$w" != "${2:-}" ] && [ -n "$1" ] && [ "$(rcli HGET q:worker:w$w job)" = "$1" ] && found=$w; done
        [ -n "$found" ] && break
        sleep 0.05
    done
    [ -n "$found" ] || return 0
    for i in $(seq 200); do curl -s "$u/v1/jobs/$1" | grep -q '"step":[1-9]' && break; sleep 0.02; done
    echo "$found"
}
id="$(submit 77 200 256x256)"   # long enough to be killed in the middle
victim="$(running_on "$id")"
check "[ -n '$victim' ]" "no worker advertised job $id as running"
if [ -n "$victim" ]; then
    eval "disown \$pid_w$victim; kill -KILL \$pid_w$victim"   # disowned: no "Killed" line from bash
    finish "$id" || bad "the killed worker's job $id did not complete: $(curl -s "$u/v1/jobs/$id")"
    check "python3 '$work/pixels.py' same '$work/$id.png' '$work/ref77.png' | grep -qx 1" \
        "the reclaimed job's pixels differ from canvas edit"
    curl -s --max-time 10 "$u/v1/jobs/$id/events" >"$work/killed.events"
    check "[ \"\$(grep -c '^event: started' '$work/killed.events')\" = 2 ]" \
        "job $id was not started twice (killed, then reclaimed): $(sed -n 's/^event: //p' "$work/killed.events" | tr '\n' ' ')"
fi

# --- a worker stalled past the visibility timeout (SIGSTOP): another takes its job; the
# stalled one, let go on, finds the job gone to another worker, stops it and stores nothing
id="$(submit 77 200 256x256)"
stalled="$(running_on "$id" "$victim")"
check "[ -n '$stalled' ]" "no live worker advertised job $id as running"
if [ -n "$stalled" ]; then
    eval "kill -STOP \$pid_w$stalled"
    for i in $(seq 100); do # visibility 2 s: another worker reclaims it
        [ "$(rcli XPENDING q workers - + 1 | sed -n 2p)" != "w$stalled" ] && break
        sleep 0.1
    done
    sleep 0.5
    eval "kill -CONT \$pid_w$stalled"
    finish "$id" || bad "the stalled worker's job $id did not complete: $(curl -s "$u/v1/jobs/$id")"
    check "python3 '$work/pixels.py' same '$work/$id.png' '$work/ref77.png' | grep -qx 1" \
        "the job taken from the stalled worker: pixels differ from canvas edit"
    for i in $(seq 100); do grep -q "job $id: another worker took it" "$work/w$stalled.err" && break; sleep 0.1; done
    check "grep -q 'job $id: another worker took it while this one was stalled past --visibility; left to it' '$work/w$stalled.err'" \
        "the stalled worker w$stalled did not let its job go: $(tail -3 "$work/w$stalled.err")"
fi

# --- DELETE a running job: the front passes it on, its worker stops it and stores nothing
id="$(curl -s --max-time 10 -X POST "${form[@]}" -F steps=1000 -F size=256x256 -F seed=9 "$u/v1/jobs" |
    sed -n 's/.*"id":"\(job-[0-9a-f]*\)".*/\1/p')"
for i in $(seq 200); do curl -s "$u/v1/jobs/$id" | grep -q '"step":[1-9]' && break; sleep 0.02; done
code="$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X DELETE "$u/v1/jobs/$id")"
state="$(curl -s --max-time 40 "$u/v1/jobs/$id?wait=30" | sed -n 's/.*"state":"\([a-z]*\)".*/\1/p')"
check "[ '$code' = 202 ] && [ '$state' = cancelled ]" "DELETE of running job $id: $code, then state '$state'"

# --- redis restarted mid-run: accepted jobs complete, the front answers 503 while it is down
ids=()
for seed in 1 2 3 4 5; do ids+=("$(submit $seed)"); done
rcli SHUTDOWN >/dev/null 2>&1
for i in $(seq 50); do kill -0 "$redis_pid" 2>/dev/null || break; sleep 0.1; done
code="$(curl -s --max-time 10 -o "$work/down.json" -w '%{http_code}' -X POST "${form[@]}" -F steps=2 -F seed=1 "$u/v1/jobs")"
check "[ $code = 503 ] && grep -q 'cannot take the job' '$work/down.json'" "a job offered while redis is down: $code $(cat "$work/down.json")"
start_redis
late=""
for i in $(seq 50); do late="$(submit 3)"; [ -n "$late" ] && break; sleep 0.2; done
check "[ -n '$late' ]" "the front took no job within 10 s of redis coming back"
pairs=()
for n in 1 2 3 4 5 6; do
    if [ $n = 6 ]; then id="$late"; else id="${ids[$((n - 1))]}"; fi
    [ -n "$id" ] || { bad "job $n was not accepted before the restart"; continue; }
    finish "$id" || bad "job $n ($id) did not complete after the redis restart: $(curl -s "$u/v1/jobs/$id")"
    pairs+=("$work/$id.png" "$work/ref$(( n == 6 ? 3 : n )).png")
done
identical="$(python3 "$work/pixels.py" same "${pairs[@]}")"
check "[ '$identical' = 6 ]" "$identical of 6 jobs across the redis restart are pixel-identical"

# --- a poison entry: NAME:dead after 3 tries, with its reason
rcli XADD q '*' job job-poison pixels 4096 payload garbage >/dev/null
for i in $(seq 100); do [ "$(rcli XLEN q:dead)" = 1 ] && break; sleep 0.1; done
dead="$(rcli XRANGE q:dead - + | tr '\n' ' ')"
check "grep -q 'job job-poison reason job payload: not a canvas job.* tries 3 payload garbage' <<<'$dead'" "q:dead: $dead"

# --- nothing stored twice, done once per job, nothing pending
stored="$(rcli KEYS 'q:result:*' | wc -l)"
check "[ '$stored' = 39 ] && [ -z \"\$(rcli HGET q:stats duplicates)\" ] && [ \"\$(rcli HGET q:stats stored)\" = 39 ]" \
    "results stored $stored (wanted 39), counted $(rcli HGET q:stats stored), duplicates $(rcli HGET q:stats duplicates)"
twice="$(rcli XRANGE q:events - + | awk 'p == "job" { id = $0 } p == "event" && $0 == "done" { n[id]++ } { p = $0 }
    END { for (k in n) if (n[k] > 1) print k }')"
check "[ -z '$twice' ]" "done published twice for: $twice"
check "[ \"\$(rcli XPENDING q workers | head -1)\" = 0 ] && [ \"\$(rcli XLEN q)\" = 0 ]" \
    "entries left: $(rcli XPENDING q workers | tr '\n' ' ') / XLEN $(rcli XLEN q)"
# --- clean stops: SIGTERM, exit 0 within 20 s (under ASan: nothing leaked, no error report)
stop_clean() {
    local pid="$1" name="$2" rc
    kill -TERM "$pid"
    timeout 20 tail --pid="$pid" -f /dev/null
    kill -KILL "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    check "[ $rc = 0 ] && ! grep -q Sanitizer '$work/$name.err'" "$name exited $rc after SIGTERM: $(tail -5 "$work/$name.err")"
}
stop_clean "$pid_front" front
for w in 1 2 3; do [ "$w" = "$victim" ] || eval "stop_clean \$pid_w$w w$w"; done
stop_clean "$pid_small" small
left="$(rcli KEYS 'q:worker:*' | grep -vx "q:worker:w$victim")"
check "[ -z '$left' ]" "workers still advertised after their stop: $left"
summary
