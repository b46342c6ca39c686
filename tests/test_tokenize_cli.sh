#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# canvas tokenize: prompts on stdin to ids (both tokenizer layouts), --decode back, the
# escapes, and the exit codes of bad input (4), bad usage (2).
source "$(dirname "$0")/cli_lib.sh"
folder="$tests/real-configs/qwen-image-edit-2511/tokenizer"
json="$tests/real-configs/qwen-image-edit-2511/processor/tokenizer.json"

# spec C.7's vectors, a template with escaped newlines, an empty prompt
printf '%s\n' 'Hello world' ' Hello world' \
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|>' \
    '' 'tab\there, back\\slash' > "$work/prompts.txt"
printf '%s\n' '9707 1879' '21927 1879' '151644 8948 198 2610 525 264 10950 17847 13 151645 198 151644 872 198 151652 151655' \
    '' > "$work/want.txt"
"$cli" tokenize "$folder" < "$work/prompts.txt" > "$work/ids.txt"; rc=$?
check "[ $rc -eq 0 ]" "tokenize exited $rc"
check 'head -4 "$work/ids.txt" | cmp -s - "$work/want.txt"' "ids: $(head -4 "$work/ids.txt")"
check '[ "$(wc -l < "$work/ids.txt")" -eq 5 ]' "one line per prompt"
"$cli" tokenize "$json" < "$work/prompts.txt" > "$work/ids2.txt"
check 'cmp -s "$work/ids.txt" "$work/ids2.txt"' "tokenizer.json gives other ids than the folder"

# --decode gives the prompts back, escaped the same way
"$cli" tokenize --decode "$folder" < "$work/ids.txt" > "$work/back.txt"
check 'cmp -s "$work/prompts.txt" "$work/back.txt"' "decode is not the prompts: $(cat "$work/back.txt")"

# the first 500 corpus lines against the reference ids
head -500 "$tests/tokenizer/corpus.txt" | "$cli" tokenize "$folder" > "$work/corpus_ids.txt"
check 'head -500 "$tests/tokenizer/ids.txt" | cmp -s - "$work/corpus_ids.txt"' "corpus head differs from the reference"

# bad input: invalid UTF-8 (line and offset named), an unknown escape, ids that are not ids
out=$(printf 'fine\nab\xc3(\n' | "$cli" tokenize "$folder" 2>&1); rc=$?
check "[ $rc -eq 4 ]" "invalid UTF-8 exited $rc"
check 'grep -q "stdin line 2: prompt: invalid UTF-8 at byte offset 2" <<<"$out"' "invalid UTF-8 message: $out"
out=$(printf 'a\\qb\n' | "$cli" tokenize "$folder" 2>&1); rc=$?
check '[ $rc -eq 4 ] && grep -q "unknown escape" <<<"$out"' "unknown escape: $rc $out"
out=$(printf '9707 x\n' | "$cli" tokenize --decode "$folder" 2>&1); rc=$?
check '[ $rc -eq 4 ] && grep -q "not a token id" <<<"$out"' "bad id: $rc $out"
out=$(printf '999999\n' | "$cli" tokenize --decode "$folder" 2>&1); rc=$?
check '[ $rc -eq 4 ] && grep -q "not a token of this tokenizer" <<<"$out"' "unknown id: $rc $out"

# out of memory at sampled points of opening and encoding: exit 3 with one line, or the same ids
for n in 1 2 5 50 500 5000 50000 200000 400000 1000000 3+ 5000+; do
    out=$(CANVAS_FAIL_ALLOC=$n "$cli" tokenize "$folder" < "$work/prompts.txt" 2>"$work/err.txt"); rc=$?
    if [ $rc -eq 0 ]; then
        check '[ "$out" = "$(cat "$work/ids.txt")" ]' "CANVAS_FAIL_ALLOC=$n: exit 0 with other ids"
    else
        check '[ $rc -eq 3 ] && [ "$(wc -l < "$work/err.txt")" -eq 1 ] && grep -q "out of memory\|injected" "$work/err.txt"' \
            "CANVAS_FAIL_ALLOC=$n: exit $rc: $(cat "$work/err.txt")"
    fi
done

# bad tokenizer paths and usage
expect 4 "no such tokenizer" -- tokenize "$work/missing"
expect 4 "tokenizer_config.json: cannot open" -- tokenize "$work"
expect 2 "missing DIR_OR_FILE" -- tokenize
expect 2 "unknown option '--frobnicate'" -- tokenize "$folder" --frobnicate
expect 0 "usage: canvas tokenize" -- tokenize --help
expect 0 "bad input line, 1 other" -- tokenize --help
# a FIFO where a tokenizer file should be is refused (exit 4), not waited on for a writer
for name in vocab.json merges.txt tokenizer_config.json; do
    rm -rf "$work/fifo_tok" && cp -r "$folder" "$work/fifo_tok" && rm "$work/fifo_tok/$name" && mkfifo "$work/fifo_tok/$name"
    out=$(timeout 20 "$cli" tokenize "$work/fifo_tok" </dev/null 2>&1); rc=$?
    check "[ $rc -eq 4 ] && grep -q 'fifo_tok/$name.*not a regular file' <<<\"\$out\"" "a FIFO as $name: exit $rc: $out"
done

summary
