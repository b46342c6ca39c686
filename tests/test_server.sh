#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# test_server.sh — `canvas serve` end to end with curl on the bundled tiny model (no text
# encoder: prompts come as the edit-cfg golden's embeddings, a multipart part). Servers listen
# on ephemeral loopback ports (--listen 127.0.0.1:0 prints the port), with a LoRA merged (a
# request may change its strength). Checks: every endpoint;
# malformed multipart, oversized bodies, wrong types, unknown ids and routes answer the right
# 4xx as JSON; 8 concurrent clients x 4 edits all complete, each image pixel-identical to
# `canvas edit` with the same seed and flags; SSE events in order; cancel mid-run and the
# server goes on; an injected out-of-memory shows a fallback event and the job completes
# with the same pixels; a --vram cap lowered through PUT /v1/memory mid-run shows a fallback to
# fp8 and the job completes; LoRAs named per request from --lora-dir; a synchronous client that
# disconnects cancels its job; finished jobs past --jobs-kept are forgotten; a full queue answers 429 with Retry-After; SIGTERM cancels the running job,
# answers the queued 503 and exits 0; a non-loopback address without --api-key is refused,
# with one a request without the key answers 401; on the demo model (tools/make_demo_model.sh,
# a text encoder) text prompts by multipart and JSON give canvas edit's / generate's pixels.
set -u
source "$(dirname "$0")/cli_lib.sh"
command -v curl >/dev/null || { echo "curl missing (tools/install-deps.sh installs it)"; exit 1; }
model="$tests/golden/models/edit-tiny"
case_dir="$tests/golden/cases/edit-cfg"
embeds="$case_dir/inputs.safetensors"
image="$case_dir/image0.png"
lora="$tests/golden/cases/lora-peft/lora0-peft.safetensors"
flags=(--steps 2 --vae-area 4096 --lora "$lora")
inputs=(-F "image=@$image" -F "prompt_embeds=@$embeds" -F vae_area=4096)
form=("${inputs[@]}" -F steps=2)

# start_server NAME ARGS...: runs `canvas serve` in the background, sets $pid_NAME, $port_NAME
start_server() {
    local name="$1" port="" i
    shift
    "$cli" serve --model "$model" --listen 127.0.0.1:0 "$@" >"$work/$name.out" 2>"$work/$name.err" &
    eval "pid_$name=$!"
    for i in $(seq 100); do
        port="$(sed -n 's|^canvas serve: listening on http://127.0.0.1:\([0-9]*\)$|\1|p' "$work/$name.out" 2>/dev/null)"
        [ -n "$port" ] && break
        sleep 0.1
    done
    [ -n "$port" ] || { echo "server $name did not start: $(cat "$work/$name.err")"; exit 1; }
    eval "port_$name=$port"
}
cleanup() {
    for p in ${pid_a:-} ${pid_b:-} ${pid_c:-} ${pid_d:-} ${pid_e:-} ${pid_f:-}; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT

# want CODE NEEDLE CURL_ARGS...: the answer has that status, is JSON and holds NEEDLE
want() {
    local code="$1" needle="$2" got body
    shift 2
    got="$(curl -s -o "$work/body" -w '%{http_code}' "$@")"
    body="$(cat "$work/body")"
    if [ "$got" != "$code" ]; then bad "curl $*: status $got, wanted $code: $body"; return; fi
    if [ "$code" -ge 400 ] && ! python3 -c 'import json,sys; e=json.load(sys.stdin)["error"]; assert e["message"] and e["code"]=='"$code" <<<"$body" 2>/dev/null; then
        bad "curl $*: not an error JSON with code $code: $body"; return
    fi
    if [ -n "$needle" ] && ! grep -qF -- "$needle" <<<"$body"; then bad "curl $*: no '$needle' in: $body"; return; fi
    ok
}

# pixels FILE.png: the decoded 8-bit RGB rows as hex (PNG filters undone), for comparing
# images whose text chunks differ
cat >"$work/pixels.py" <<'PY'
import struct, sys, zlib
def pixels(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w, h = 8, b"", 0, 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour == 2
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, out, prev = zlib.decompress(idat), 3 * w, bytearray(), bytearray(3 * w)
    for y in range(h):
        f, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = row[x - 3] if x >= 3 else 0
            b, c = prev[x], prev[x - 3] if x >= 3 else 0
            if f == 1: row[x] = (row[x] + a) & 255
            elif f == 2: row[x] = (row[x] + b) & 255
            elif f == 3: row[x] = (row[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out += row
        prev = row
    return w, h, bytes(out)
def load(path):  # a PNG, or an OpenAI answer's b64_json image
    import base64, json
    data = open(path, "rb").read()
    return pixels(data if path.endswith(".png") else base64.b64decode(json.loads(data)["data"][0]["b64_json"]))
# same A B [A B ...]: prints how many pairs have the same pixels (one Python start for all)
pairs = sys.argv[2:]
same = 0
for a, b in zip(pairs[0::2], pairs[1::2]):
    try:
        same += load(a) == load(b)
    except Exception as e:
        print(a, e, file=sys.stderr)
print(same)
PY
same_pixels() { [ "$(python3 "$work/pixels.py" same "$1" "$2")" = 1 ]; }

start_server a --queue 8 --max-body 1M --jobs-kept 2 --lora "$lora"

# --- read-only endpoints
want 200 '"status":"ok"' "http://127.0.0.1:$port_a/healthz"
want 200 '"text_encoder":false,"strategy":"auto","loras":[{"name":"lora0-peft","scale":1}],"lightning":false' "http://127.0.0.1:$port_a/healthz"
want 200 '<html' "http://127.0.0.1:$port_a/"
want 200 'canvas_jobs_total{outcome="done"} 0' "http://127.0.0.1:$port_a/metrics"
want 200 '"total_blocks":2' "http://127.0.0.1:$port_a/v1/memory"
want 200 '"chosen":{"name":"full","fits":true' "http://127.0.0.1:$port_a/v1/plan?width=64&height=64&refs=1"
want 400 'width takes a whole number' "http://127.0.0.1:$port_a/v1/plan?width=abc"
want 202 '"strategy":"auto"' -X PUT -H 'Content-Type: application/json' -d '{"strategy":"auto"}' "http://127.0.0.1:$port_a/v1/strategy"
want 400 "strategy 'bogus'" -X PUT -H 'Content-Type: application/json' -d '{"strategy":"bogus"}' "http://127.0.0.1:$port_a/v1/strategy"
want 409 'no device' -X PUT -H 'Content-Type: application/json' -d '{"vram_limit":"1M"}' "http://127.0.0.1:$port_a/v1/memory"

# --- bad requests: the right 4xx, as JSON, and nothing runs
u="http://127.0.0.1:$port_a"
want 404 'no such endpoint' "$u/v1/nothing"
want 404 "no job 'job-00000000'" "$u/v1/jobs/job-00000000"
want 404 "no job" -X DELETE "$u/v1/jobs/job-unknown"
want 404 "no job" "$u/v1/jobs/job-unknown/events"
want 405 'POST only' "$u/v1/images/edits"
want 405 'GET only' -X POST -d x "$u/healthz"
want 415 'Content-Type must be' -X POST -H 'Content-Type: text/plain' -d 'hello' "$u/v1/images/edits"
want 400 'boundary' -X POST -H 'Content-Type: multipart/form-data' -d 'x' "$u/v1/images/edits"
want 400 'malformed multipart' -X POST -H 'Content-Type: multipart/form-data; boundary=XyZ' --data-binary $'--XyZ\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nno end' "$u/v1/images/edits"
want 400 'without a name' -X POST -H 'Content-Type: multipart/form-data; boundary=XyZ' --data-binary $'--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--\r\n' "$u/v1/images/edits"
head -c 1200000 /dev/zero >"$work/big.bin"
want 413 'over 1048576 bytes' -X POST -F "image=@$work/big.bin" "$u/v1/images/edits"
want 400 'steps takes a whole number' -X POST "${inputs[@]}" -F steps=abc "$u/v1/images/edits"
want 400 'cfg takes a number' -X POST -F "image=@$image" -F "prompt_embeds=@$embeds" -F cfg=-1 "$u/v1/images/edits"
want 400 'seed takes a whole number' -X POST -F "image=@$image" -F "prompt_embeds=@$embeds" -F seed=-3 "$u/v1/images/edits"
want 400 'size takes WxH' -X POST -F "image=@$image" -F "prompt_embeds=@$embeds" -F size=big "$u/v1/images/edits"
want 413 'over the server' -X POST -F "image=@$image" -F "prompt_embeds=@$embeds" -F size=16384x16384 "$u/v1/images/edits"
want 400 'n must be 1' -X POST -F "image=@$image" -F "prompt_embeds=@$embeds" -F n=2 "$u/v1/images/edits"
want 400 'response_format must be b64_json' -X POST -F "image=@$image" -F "prompt_embeds=@$embeds" -F response_format=url "$u/v1/images/edits"
want 400 "unknown field 'stepz'" -X POST -F "image=@$image" -F "prompt_embeds=@$embeds" -F stepz=2 "$u/v1/images/edits"
want 400 'an edit needs at least one image' -X POST -F "prompt_embeds=@$embeds" "$u/v1/images/edits"
want 400 'image 1' -X POST -F "image=@$embeds" -F "prompt_embeds=@$embeds" "$u/v1/images/edits"
want 400 'prompt_embeds' -X POST -F "image=@$image" -F "prompt_embeds=@$image" "$u/v1/images/edits"
want 400 'no text encoder' -X POST -F "image=@$image" -F prompt=hello "$u/v1/images/edits"
want 400 'give a prompt' -X POST -F "image=@$image" "$u/v1/images/edits"
want 400 'the JSON body' -X POST -H 'Content-Type: application/json' -d '{"prompt": ' "$u/v1/images/generations"
want 400 'must be a string, number or boolean' -X POST -H 'Content-Type: application/json' -d '{"steps": [2]}' "$u/v1/images/generations"
want 400 'nested deeper' -X POST -H 'Content-Type: application/json' -d '{"a":[[[[[[[[[[1]]]]]]]]]]}' "$u/v1/images/generations"
want 400 'not an object' -X POST -H 'Content-Type: application/json' -d '[1]' "$u/v1/jobs"
want 400 'a generation takes no image' -X POST "${form[@]}" "$u/v1/images/generations"
want 200 'canvas_jobs_total{outcome="done"} 0' "$u/metrics"

# --- the references: canvas edit with the same seeds and flags
for seed in 1 2 3 4; do
    "$cli" edit --model "$model" --image "$image" --prompt-embeds "$embeds" "${flags[@]}" --seed "$seed" \
        -o "$work/ref$seed.png" 2>/dev/null || bad "canvas edit --seed $seed failed"
done

# --- 8 concurrent clients x 4 edits (OpenAI endpoint, synchronous), seeds 1..4
for client in 1 2 3 4 5 6 7 8; do
    (for seed in 1 2 3 4; do
        curl -s -o "$work/c$client-$seed.json" -w '%{http_code}\n' "${form[@]}" -F seed=$seed "$u/v1/images/edits"
    done >"$work/c$client.codes") &
done
wait_clients() { local p; for p in $(jobs -p); do [ "$p" = "$pid_a" ] || wait "$p"; done; }
wait_clients
pairs=()
for client in 1 2 3 4 5 6 7 8; do
    [ "$(tr '\n' ' ' <"$work/c$client.codes")" = "200 200 200 200 " ] || bad "client $client: statuses $(cat "$work/c$client.codes")"
    for seed in 1 2 3 4; do pairs+=("$work/c$client-$seed.json" "$work/ref$seed.png"); done
done
identical="$(python3 "$work/pixels.py" same "${pairs[@]}")"
check "[ $identical = 32 ]" "$identical of 32 concurrent images are pixel-identical to canvas edit"
want 200 'canvas_jobs_total{outcome="done"} 32' "$u/metrics"
want 200 'canvas_step_seconds_count 64' "$u/metrics"

# --- a job: 202, its events in order, its state, its PNG (the same pixels again)
want 202 '"state":"queued"' -X POST "${form[@]}" -F seed=3 "$u/v1/jobs"
id="$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$work/body")"
want 200 '"state":"done"' "$u/v1/jobs/$id?wait=30"
curl -s -N --max-time 30 "$u/v1/jobs/$id/events" >"$work/events.txt"
order="$(sed -n 's/^event: //p' "$work/events.txt" | tr '\n' ' ')"
check "[ '$order' = 'queued started phase phase plan phase step step phase done ' ]" "events out of order: $order"
ids="$(sed -n 's/^id: //p' "$work/events.txt" | tr '\n' ' ')"
check "[ '$ids' = '0 1 2 3 4 5 6 7 8 9 ' ]" "event ids: $ids"
check "grep -q '\"step\":2,\"steps\":2.*\"device_bytes\":[0-9]*.*\"host_bytes\":[0-9]*.*\"pinned_bytes\":0' '$work/events.txt'" "step events lack memory: $(cat "$work/events.txt")"
want 200 '"state":"done"' "$u/v1/jobs/$id"
check "curl -s -o '$work/job.png' '$u/v1/jobs/$id/image.png' && same_pixels '$work/job.png' '$work/ref3.png'" "the job's PNG differs from canvas edit --seed 3"
want 409 'already finished' -X DELETE "$u/v1/jobs/$id"
done_id="$id"
want 200 '"name":"vae-decode"' "$u/v1/memory"

# --- generation (JSON is for text prompts; this model takes embeddings: multipart on /v1/jobs)
"$cli" generate --model "$model" --prompt-embeds "$embeds" --steps 2 --width 64 --height 64 --seed 5 --lora "$lora" \
    -o "$work/gen.png" 2>/dev/null
want 200 '"b64_json"' -X POST -F "prompt_embeds=@$embeds" -F steps=2 -F size=64x64 -F seed=5 "$u/v1/images/generations"
cp "$work/body" "$work/gen.json"
check "same_pixels '$work/gen.json' '$work/gen.png'" "generation differs from canvas generate"

# --- a request's LoRA strength (the transformer merged again), then the server's again
"$cli" edit --model "$model" --image "$image" --prompt-embeds "$embeds" --steps 2 --vae-area 4096 \
    --lora "$lora:0.5" --seed 2 -o "$work/ref_half.png" 2>/dev/null
want 200 '"b64_json"' "${form[@]}" -F seed=2 -F lora_scale=0.5 "$u/v1/images/edits"
cp "$work/body" "$work/half.json"
want 200 '"b64_json"' "${form[@]}" -F seed=2 "$u/v1/images/edits"
cp "$work/body" "$work/full.json"
check "same_pixels '$work/half.json' '$work/ref_half.png'" "lora_scale=0.5 differs from canvas edit --lora FILE:0.5"
check "same_pixels '$work/full.json' '$work/ref2.png' && ! same_pixels '$work/half.json' '$work/ref2.png'" "after lora_scale 0.5 the next job is not back at the server's scale"
want 400 "more scales than the server's 1 LoRA" "${form[@]}" -F lora_scale=1,1 "$u/v1/images/edits"
want 400 'lora_scale takes numbers' "${form[@]}" -F lora_scale=abc "$u/v1/images/edits"

# --- cancel mid-run: stops at a step boundary, the server goes on
want 202 '"state":"queued"' -X POST "${inputs[@]}" -F steps=1000 "$u/v1/jobs"
id="$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$work/body")"
for i in $(seq 100); do curl -s "$u/v1/jobs/$id" | grep -q '"step":[1-9]' && break; sleep 0.1; done
want 202 '"state":"running"' -X DELETE "$u/v1/jobs/$id"
for i in $(seq 100); do curl -s "$u/v1/jobs/$id" | grep -q '"state":"cancelled"' && break; sleep 0.1; done
want 200 '"state":"cancelled"' "$u/v1/jobs/$id"
want 409 'is cancelled: no image' "$u/v1/jobs/$id/image.png"
curl -s -N --max-time 10 "$u/v1/jobs/$id/events" >"$work/cancel.txt"
check "tail -3 '$work/cancel.txt' | grep -q '\"state\":\"cancelled\"' && ! grep -q '\"step\":1000,' '$work/cancel.txt'" "cancelled stream: $(tail -3 "$work/cancel.txt")"
want 200 '"b64_json"' -X POST "${form[@]}" -F seed=1 "$u/v1/images/edits"
want 200 'canvas_jobs_total{outcome="cancelled"} 1' "$u/metrics"
# --jobs-kept 2: two jobs finished since, so the earlier one is forgotten
want 404 "no job '$done_id'" "$u/v1/jobs/$done_id"
want 200 '"state":"cancelled"' "$u/v1/jobs/$id"

# --- a non-loopback address needs --api-key; with one, requests without it answer 401
expect 2 "give --api-key" -- serve --model "$model" --listen 0.0.0.0:0

# --- server b: queue 2 and an API key; a full queue answers 429; SIGTERM cancels the running
# job (its event stream ends with it), answers the queued ones 503 and exits 0
start_server b --queue 2 --api-key sekrit
ub="http://127.0.0.1:$port_b"
want 200 '"status":"ok"' "$ub/healthz"
want 401 'API key' "$ub/metrics"
want 401 'API key' -H 'Authorization: Bearer wrong' "$ub/metrics"
key=(-H 'Authorization: Bearer sekrit')
want 200 'canvas_queue_length 0' "${key[@]}" "$ub/metrics"
want 202 'queued' "${key[@]}" -X POST "${inputs[@]}" -F steps=1000 "$ub/v1/jobs"
running="$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$work/body")"
for i in $(seq 100); do curl -s "${key[@]}" "$ub/v1/jobs/$running" | grep -q '"state":"running"' && break; sleep 0.1; done
curl -s -N --max-time 30 "${key[@]}" "$ub/v1/jobs/$running/events" >"$work/stopped.txt" &
stream=$!
want 202 'queued' "${key[@]}" -X POST "${form[@]}" "$ub/v1/jobs"
curl -s "${key[@]}" "${form[@]}" -o "$work/waiting.json" -w '%{http_code}' "$ub/v1/images/edits" >"$work/waiting.code" &
waiter=$!
for i in $(seq 100); do curl -s "${key[@]}" "$ub/metrics" | grep -q '^canvas_queue_length 2' && break; sleep 0.1; done
curl -s -D "$work/headers" -o "$work/body" "${key[@]}" "${form[@]}" "$ub/v1/jobs" >/dev/null
check "grep -q '^HTTP/1.1 429' '$work/headers' && grep -qi '^Retry-After: [0-9]' '$work/headers'" "full queue: $(cat "$work/headers")"
check "grep -q 'rate_limit_error' '$work/body'" "429 body: $(cat "$work/body")"
kill -TERM "$pid_b"
wait "$pid_b"
rc=$?
check "[ $rc = 0 ]" "SIGTERM: exit $rc, wanted 0: $(cat "$work/b.err")"
wait "$waiter" "$stream"
check "grep -q 'cancelling the running job at its next step, 2 queued answered 503' '$work/b.err'" "no stop line: $(cat "$work/b.err")"
check "[ \"\$(cat '$work/waiting.code')\" = 503 ]" "a request waiting at SIGTERM got $(cat "$work/waiting.code")"
check "tail -2 '$work/stopped.txt' | grep -q '\"state\":\"cancelled\",\"status\":503'" "the running job's stream: $(tail -2 "$work/stopped.txt")"
pid_b=""

kill -TERM "$pid_a"
wait "$pid_a"
check "[ $? = 0 ]" "server a: SIGTERM exit status"
pid_a=""

# --- a fallback: an out-of-memory injected into step 2 (the 150th activation allocation,
# transient) is released and the step redone; the event stream says so, the job completes
# with the pixels of canvas edit
CANVAS_FAIL_ALLOC=150:activations start_server d
ud="http://127.0.0.1:$port_d"
"$cli" edit --model "$model" --image "$image" --prompt-embeds "$embeds" --steps 4 --vae-area 4096 --seed 7 \
    -o "$work/ref_fallback.png" 2>/dev/null
want 202 'queued' -X POST "${inputs[@]}" -F steps=4 -F seed=7 "$ud/v1/jobs"
id="$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$work/body")"
curl -s -N --max-time 30 "$ud/v1/jobs/$id/events" >"$work/fallback.txt"
order="$(sed -n 's/^event: //p' "$work/fallback.txt" | tr '\n' ' ')"
check "[ '$order' = 'queued started phase phase plan phase step fallback step step step phase done ' ]" "fallback events: $order"
check "grep -q '\"event\":\"fallback\".*out of memory in step 2.*(injected)' '$work/fallback.txt'" "no fallback line: $(grep -A1 fallback "$work/fallback.txt")"
want 200 '"fallbacks":1' "$ud/v1/jobs/$id"
check "curl -s -o '$work/fallback.png' '$ud/v1/jobs/$id/image.png' && same_pixels '$work/fallback.png' '$work/ref_fallback.png'" "the job that fell back differs from canvas edit"
want 200 'canvas_fallbacks_total 1' "$ud/metrics"
kill -TERM "$pid_d"
wait "$pid_d"
check "[ $? = 0 ]" "server d: SIGTERM exit status"
pid_d=""

# --- the device shrinks mid-run: PUT /v1/memory lowers the cap to 1 MiB after the first step
# (as another process taking GPU memory); nothing in bf16 fits 1 MiB on the 2-block model, so
# with --allow-quantize the next step falls back to fp8 (a fallback event saying so), and the
# job completes
start_server e --vram 16M --strategy full --allow-quantize
ue="http://127.0.0.1:$port_e"
# 400 steps: the same edit through canvas edit took 0.25 s for 300 steps in Release on the
# 2-core build machine, so ~0.33 s, while the PUT comes ~0.05 s after step 1 is seen; under ASan
# a step after the fallback took 85 ms (~35 s), hence the long polls below
want 202 'queued' -X POST "${inputs[@]}" -F steps=400 -F seed=5 "$ue/v1/jobs"
id="$(sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$work/body")"
for i in $(seq 200); do curl -s "$ue/v1/jobs/$id" | grep -q '"step":[1-9]' && break; sleep 0.05; done
want 202 '"vram_limit":1048576' -X PUT -H 'Content-Type: application/json' -d '{"vram_limit":"1M"}' "$ue/v1/memory"
for i in $(seq 5); do # long polls of up to 60 s each
    curl -s --max-time 70 "$ue/v1/jobs/$id?wait=60" | grep -q '"state":"\(done\|failed\)"' && break
done
want 200 '"state":"done"' "$ue/v1/jobs/$id"
want 200 '"fallbacks":1' "$ue/v1/jobs/$id"
curl -s -N --max-time 30 "$ue/v1/jobs/$id/events" >"$work/shrink.txt"
check "grep -q '\"event\":\"fallback\".*lowered from the files.* precision to fp8' '$work/shrink.txt'" "no fp8 fallback event: $(grep -A1 fallback "$work/shrink.txt" | head -3)"
check "grep -c '^event: fallback' '$work/shrink.txt' | grep -qx 1" "fallback events: $(grep -c '^event: fallback' "$work/shrink.txt")"
check "curl -s -o '$work/shrink.png' '$ue/v1/jobs/$id/image.png' && python3 '$work/pixels.py' same '$work/shrink.png' '$work/shrink.png' >/dev/null" "the job that fell back to fp8 has no PNG"
want 200 'canvas_fallbacks_total 1' "$ue/metrics"
# 0 bytes is refused here, not answered 202 and then refused by the library
want 400 'vram_limit takes 1 byte' -X PUT -H 'Content-Type: application/json' -d '{"vram_limit":0}' "$ue/v1/memory"
kill -TERM "$pid_e"
wait "$pid_e"
check "[ $? = 0 ]" "server e: SIGTERM exit status"
pid_e=""

# --- LoRAs by name from --lora-dir: each file checked at start and merged only for the jobs
# that name it (lora=NAME:SCALE), the same pixels as canvas edit --lora FILE:SCALE; a job
# naming none has the pixels of no LoRA; unknown names and paths answer 400; entries that are
# not regular *.safetensors files (a FIFO, a folder) are skipped, never opened
mkdir -p "$work/loras/sub.safetensors"
cp "$lora" "$work/loras/"
cp "$tests/golden/cases/lora-kohya/lora0-kohya.safetensors" "$work/loras/kohya.safetensors"
mkfifo "$work/loras/fifo.safetensors"
echo "not a LoRA" >"$work/loras/readme.txt"
start_server f --lora-dir "$work/loras"
uf="http://127.0.0.1:$port_f"
want 200 '"loras":[{"name":"kohya","scale":0},{"name":"lora0-peft","scale":0}]' "$uf/healthz"
"$cli" edit --model "$model" --image "$image" --prompt-embeds "$embeds" --steps 2 --vae-area 4096 --seed 2 \
    -o "$work/ref_none.png" 2>/dev/null
want 200 '"b64_json"' "${form[@]}" -F seed=2 -F lora=lora0-peft:0.5 "$uf/v1/images/edits"
check "same_pixels '$work/body' '$work/ref_half.png'" "lora=lora0-peft:0.5 differs from canvas edit --lora FILE:0.5"
want 200 '"b64_json"' "${form[@]}" -F seed=2 "$uf/v1/images/edits"
check "same_pixels '$work/body' '$work/ref_none.png'" "a job naming no LoRA differs from canvas edit without one"
want 400 "no LoRA named 'nope' (it has: kohya, lora0-peft)" "${form[@]}" -F lora=nope "$uf/v1/images/edits"
want 400 "no LoRA named '../loras/kohya'" "${form[@]}" -F lora=../loras/kohya "$uf/v1/images/edits"
want 400 "no LoRA named 'fifo'" "${form[@]}" -F lora=fifo "$uf/v1/images/edits"
want 400 "the strength of 'kohya' takes a number" "${form[@]}" -F lora=kohya:x "$uf/v1/images/edits"
want 400 "'kohya' is named twice" "${form[@]}" -F lora=kohya:1,kohya:2 "$uf/v1/images/edits"
# a synchronous client that goes away: its job is cancelled (within 0.2 s), the server goes on
curl -s -o /dev/null --max-time 0.5 "${inputs[@]}" -F steps=1000 -F size=128x128 "$uf/v1/images/edits"
for i in $(seq 100); do curl -s "$uf/metrics" | grep -q 'canvas_jobs_total{outcome="cancelled"} 1' && break; sleep 0.1; done
want 200 'canvas_jobs_total{outcome="cancelled"} 1' "$uf/metrics"
check "grep -q 'the client disconnected: cancelled' '$work/f.err'" "no disconnect line: $(cat "$work/f.err")"
want 200 '"b64_json"' "${form[@]}" -F seed=2 "$uf/v1/images/edits"
kill -TERM "$pid_f"
wait "$pid_f"
check "[ $? = 0 ]" "server f: SIGTERM exit status"
pid_f=""
"$cli" serve --model "$model" --listen 127.0.0.1:0 --vram 16M --strategy nf4 >/dev/null 2>"$work/g.err"
check "[ $? = 2 ] && grep -q 'allow quantising' '$work/g.err'" "a quantising strategy without --allow-quantize: $(cat "$work/g.err")"
"$cli" serve --model "$model" --listen 127.0.0.1:0 --lora-dir "$work/nowhere" >/dev/null 2>"$work/f.err"
check "[ $? = 4 ] && grep -q 'lora-dir .*nowhere' '$work/f.err'" "a missing --lora-dir: $(cat "$work/f.err")"
# a file whose name a request could not give (lora= separates with ',' and ':'): refused at start
mkdir "$work/odd" && cp "$lora" "$work/odd/a,b.safetensors"
"$cli" serve --model "$model" --listen 127.0.0.1:0 --lora-dir "$work/odd" >/dev/null 2>"$work/f.err"
check "[ $? = 2 ] && grep -q \"name cannot hold ',' or ':'\" '$work/f.err'" "a LoRA named a,b: $(cat "$work/f.err")"

# --- text prompts: the demo model (a text encoder with the real tokenizer), the same pixels
# as canvas edit / generate --prompt, through multipart and through JSON
make_demo="$(dirname "$cli")/make_demo_model"
if [ -x "$make_demo" ] && bash "$tests/../tools/make_demo_model.sh" "$(dirname "$cli")" "$work/demo" >/dev/null 2>&1; then
    model="$work/demo"
    start_server c
    uc="http://127.0.0.1:$port_c"
    want 200 '"text_encoder":true' "$uc/healthz"
    text="Make the sky purple and add a small red boat."
    "$cli" edit --model "$model" --image "$image" --prompt "$text" --steps 2 --vae-area 4096 --seed 9 \
        -o "$work/text_ref.png" 2>/dev/null
    want 200 '"b64_json"' -F "image[]=@$image" -F "prompt=$text" -F steps=2 -F vae_area=4096 -F seed=9 "$uc/v1/images/edits"
    cp "$work/body" "$work/text.json"
    check "same_pixels '$work/text.json' '$work/text_ref.png'" "a text-prompt edit differs from canvas edit --prompt"
    "$cli" generate --model "$model" --prompt "a red boat" --negative-prompt "blurry" --steps 2 --width 64 --height 64 \
        --seed 4 -o "$work/text_gen_ref.png" 2>/dev/null
    want 200 '"b64_json"' -H 'Content-Type: application/json' \
        -d '{"prompt": "a red boat", "negative_prompt": "blurry", "size": "64x64", "steps": 2, "seed": 4, "model": "any"}' \
        "$uc/v1/images/generations"
    cp "$work/body" "$work/text_gen.json"
    check "same_pixels '$work/text_gen.json' '$work/text_gen_ref.png'" "a JSON generation differs from canvas generate --prompt"
    want 400 'goes with prompt' -F "image=@$image" -F "prompt_embeds=@$embeds" -F negative_prompt=x "$uc/v1/images/edits"
    kill -TERM "$pid_c"
    wait "$pid_c"
    check "[ $? = 0 ]" "server c: SIGTERM exit status"
    pid_c=""
else
    bad "could not make the demo model with $make_demo"
fi
summary
