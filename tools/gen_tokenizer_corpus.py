#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Write the tokenizer's reference corpus: >= 20,000 prompts, deterministic (seeded).

    python3 tools/gen_tokenizer_corpus.py > tests/tokenizer/corpus.txt

One prompt per line, escaped as `canvas tokenize` reads them (\\n \\r \\t \\\\). The kinds:
ASCII prose, CJK, emoji and ZWJ sequences, accents in NFC and NFD (and the source column
of Unicode's NormalizationTest), digits and numbers, long whitespace runs (CR, LF, tab,
U+2028/2029, U+3000...), code, the 22 added tokens inside and around words (and broken
ones), apostrophe contractions in both cases, and random valid UTF-8.

Kept out, on purpose, so that the JavaScript reference (tools/gen_tokenizer_reference.sh)
and the Hugging Face tokenizer the model was trained with agree on every line:
  - the 4 added tokens that Qwen3's file has and this model lacks (<tool_response>,
    </tool_response>, <think>, </think>);
  - U+0085 and U+FEFF: JavaScript's \\s leaves out U+0085 (White_Space) and adds U+FEFF;
  - an apostrophe before U+017F (long s): the HF regex engines fold it to 's', JS does not;
  - code points unassigned in Unicode 15 (the tables' version; Node's is newer);
  - U+0000 (it would make the file binary for git).
docs/tokenizer.md says what the tokenizer does on those.
"""
import bz2
import os
import random
import sys
import unicodedata

UCD = "/usr/share/unicode"
rng = random.Random(20261205)

ADDED = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
         "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
         "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>",
         "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
FORBIDDEN = ["<tool_response>", "</tool_response>", "<think>", "</think>", "\u0085", "\ufeff", "\0"]

WORDS = ("the a an of to in is it that was for on are with as his they be at one have this from or had by hot "
         "word but what some we can out other were all there when up use your how said each she which do their "
         "time if will way about many then them write would like so these her long make thing see him two has "
         "look more day could go come did number sound no most people my over know water than call first who "
         "may down side been now find picture image edit replace background sky red blue green cat dog woman "
         "man wearing hat glasses sunset mountain river city night photo style painting watercolor Qwen "
         "transformer tokenizer encoding Unicode naïve café résumé Zürich São Paulo façade jalapeño").split()
PUNCT = list(".,;:!?-—–()[]{}\"'`/@#$%^&*+=<>|~_…«»“”‘’")
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u3000", "\u00a0", "\u2028", "\u2029", "\u2003", "\u202f", "\x0b", "\x0c"]
EMOJI = ["😀", "👍", "👍🏽", "❤️", "🇨🇳", "🇺🇸", "🏳️‍🌈", "👨‍👩‍👧‍👦", "👩🏾‍💻", "🧑‍🚀", "1️⃣", "#️⃣", "🐈‍⬛",
         "👁️‍🗨️", "🫠", "🤌", "🎨", "✨", "☕", "🧙‍♂️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "👩‍❤️‍💋‍👨", "🙂‍↔️"]


def assigned_code_points():
    """Code points assigned in the tables' Unicode version, less the kept-out ones."""
    out, first = [], None
    with open(os.path.join(UCD, "UnicodeData.txt"), encoding="utf-8") as f:
        for line in f:
            fields = line.split(";")
            cp, name, cat = int(fields[0], 16), fields[1], fields[2]
            if name.endswith(", First>"):
                first = cp
                continue
            lo = first if name.endswith(", Last>") else cp
            first = None
            if cat in ("Cs", "Co") or cp in (0, 0x85, 0xFEFF):
                continue
            out.extend(range(lo, cp + 1))
    return out


ASSIGNED = assigned_code_points()
BMP = [c for c in ASSIGNED if c < 0x10000]


def words(n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def ascii_prose():
    parts = []
    for _ in range(rng.randint(1, 4)):
        s = words(rng.randint(1, 14))
        s = s[0].upper() + s[1:] if rng.random() < 0.6 else s
        parts.append(s + rng.choice([".", "!", "?", ",", ";", ":", "...", " -", ""]))
    s = " ".join(parts)
    if rng.random() < 0.3:
        s = s.upper() if rng.random() < 0.5 else s.title()
    return s


def cjk():
    ranges = [(0x4E00, 0x9FFF), (0x3040, 0x309F), (0x30A0, 0x30FF), (0xAC00, 0xD7A3), (0x3400, 0x4DBF)]
    out = []
    for _ in range(rng.randint(1, 30)):
        lo, hi = rng.choice(ranges)
        out.append(chr(rng.randint(lo, hi)))
        r = rng.random()
        if r < 0.1:
            out.append(rng.choice("，。！？、：；「」（）《》 "))
        elif r < 0.15:
            out.append(" " + rng.choice(WORDS) + " ")
        elif r < 0.18:
            out.append(str(rng.randint(0, 9999)))
    return "".join(out)


def emoji():
    out = []
    for _ in range(rng.randint(1, 8)):
        out.append(rng.choice(EMOJI))
        if rng.random() < 0.5:
            out.append(rng.choice([" ", "", " " + rng.choice(WORDS) + " ", "\n", "!"]))
    return "".join(out)


def accents():
    base = rng.choice(["café", "naïve", "Ångström", "Tiếng Việt", "crème brûlée", "Ελληνικά", "ὁ λόγος", "Français",
                       "Dvořák", "Łódź", "ñandú", "Ƕ ǅ ǈ", "ḍ̇", "q̣̇", "Å Å", "한국어", "ᄀ각", "é̀", "ṩ", "ếệ"])
    s = base + " " + words(rng.randint(0, 4))
    form = rng.choice(["NFC", "NFD", "NFD", "NFKD"])
    s = unicodedata.normalize(form, s)
    if rng.random() < 0.3:   # combining marks in a non-canonical order
        s += rng.choice(["a\u0301\u0323", "a\u0323\u0301", "e\u0302\u0300\u0323", "o\u031b\u0301\u0323",
                         "\u0301", "\u1100\u1161\u11a8", "\u1100\u1161", "\uac00\u11a8"])
    return s


def normalization_test_lines():
    path = os.path.join(UCD, "NormalizationTest.txt.bz2")
    out = []
    with bz2.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("@"):
                continue
            src = "".join(chr(int(x, 16)) for x in line.split(";")[0].split())
            out.append(src)
    picked = rng.sample(out, 3000)
    # several tests per line: the cases also meet each other and ordinary text
    return [" ".join(picked[i:i + 3]) + rng.choice(["", " x", "1"]) for i in range(0, len(picked), 3)]


def digits():
    kinds = [lambda: str(rng.randint(0, 10 ** rng.randint(1, 20))), lambda: "%.6f" % rng.uniform(-1e6, 1e6),
             lambda: "%04d-%02d-%02d" % (rng.randint(1900, 2100), rng.randint(1, 12), rng.randint(1, 28)),
             lambda: "".join(chr(0x660 + rng.randint(0, 9)) for _ in range(rng.randint(1, 8))),
             lambda: "".join(chr(0xFF10 + rng.randint(0, 9)) for _ in range(rng.randint(1, 8))),
             lambda: rng.choice(["²", "³", "½", "¾", "Ⅻ", "ⅷ", "①", "⑳", "𝟘𝟙", "٣٤", "१२३", "〇"]),
             lambda: "%dx%d" % (rng.randint(1, 4096), rng.randint(1, 4096)), lambda: "v%d.%d.%d" % (1, 2, rng.randint(0, 99))]
    return " ".join(rng.choice(kinds)() for _ in range(rng.randint(1, 5)))


def whitespace():
    out = []
    for _ in range(rng.randint(1, 6)):
        out.append("".join(rng.choice(SPACES) for _ in range(rng.randint(1, 40))))
        out.append(rng.choice([rng.choice(WORDS), rng.choice(PUNCT), str(rng.randint(0, 99)), "", rng.choice(EMOJI)]))
    return "".join(out)


CODE = ["def f(x):\n    return x ** 2\n", "for (int i = 0; i < n; i++) {\n\tsum += a[i];\n}\n",
        "const x = () => { return {a: 1, b: [2, 3]}; };", "#include <stdio.h>\r\nint main(void) { puts(\"hi\"); }\r\n",
        "SELECT * FROM t WHERE id != 3 AND name LIKE '%x%';", "if x:\n\n\n        pass\n    else:\n\ty = x[::-1]",
        "<div class=\"a\">&nbsp;</div>", "$ echo \"$HOME\" | grep -v '^#' >> /tmp/out 2>&1",
        "fn main() -> Result<(), Box<dyn Error>> { Ok(()) }", "x = {'k': \"v\", \"n\": None}  # comment",
        "    \n    \n", "a=b;c=d;;\n}\n}\n", "{\"json\": [1, 2.5e-3, true, null]}", "// TODO: fix\n/* block */"]


def code():
    return "".join(rng.choice(CODE) for _ in range(rng.randint(1, 3)))


def added_tokens():
    out = []
    for _ in range(rng.randint(1, 6)):
        t = rng.choice(ADDED)
        r = rng.random()
        if r < 0.15:
            t = t[:rng.randint(1, len(t) - 1)]          # broken: a prefix
        elif r < 0.25:
            t = t[rng.randint(1, len(t) - 1):]          # broken: a suffix
        elif r < 0.3:
            t = "<" + t + ">"
        glue = rng.choice(["", " ", "\n", rng.choice(WORDS), "Picture 1: ", "  "])
        out.append(glue + t)
    return "".join(out) + rng.choice(["", rng.choice(WORDS), " ", "\n"])


def contractions():
    out = []
    for _ in range(rng.randint(1, 8)):
        c = rng.choice(CONTRACTIONS + ["'", "''", "’s", "'x", "'S", "'T", "'RE", "'Ve", "'mM", "'LL", "'lL", "'D"])
        c = "".join(ch.upper() if rng.random() < 0.5 else ch for ch in c)
        out.append(rng.choice(["", "", " ", "it", "IT", "we", "1", ".", "\n"]) + rng.choice(WORDS) * (rng.random() < 0.7) + c)
        out.append(rng.choice(["", " ", "x", "s", "\n", "'"]))
    return "".join(out)


def random_utf8():
    pool = BMP if rng.random() < 0.6 else ASSIGNED
    n = rng.randint(1, 40)
    return "".join(chr(rng.choice(pool)) if rng.random() < 0.8 else rng.choice(SPACES + PUNCT + ["a", "7"])
                   for _ in range(n))


def mixed():
    kinds = [ascii_prose, cjk, emoji, accents, digits, whitespace, code, added_tokens, contractions, random_utf8]
    return "".join(rng.choice(kinds)() + rng.choice(["", " ", "\n"]) for _ in range(rng.randint(2, 4)))


def templates():
    user = rng.choice([ascii_prose, cjk, accents, emoji])()
    pics = "".join("Picture %d: <|vision_start|><|image_pad|><|vision_end|>" % (i + 1) for i in range(rng.randint(0, 3)))
    return ("<|im_start|>system\nDescribe the key features of the input image (color, shape, size, texture, "
            "objects, background), then explain how the user's text instruction should alter or modify the "
            "image.<|im_end|>\n<|im_start|>user\n" + pics + user + "<|im_end|>\n<|im_start|>assistant\n")


def escape(s):
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def acceptable(s):
    if any(f in s for f in FORBIDDEN):
        return False
    return not any(s[i] == "'" and s[i + 1] == "\u017f" for i in range(len(s) - 1))


def main():
    plan = [(ascii_prose, 2500), (cjk, 2000), (emoji, 1500), (accents, 2000), (digits, 1500), (whitespace, 2000),
            (code, 1000), (added_tokens, 2000), (contractions, 2000), (random_utf8, 3000), (mixed, 1500),
            (templates, 200)]
    corpus = ["", " ", "\n", "Hello world", " Hello world", "'s", "\u2028", "a\u2028b", "\r\n\r\n"]
    corpus += normalization_test_lines()
    for kind, count in plan:
        made = 0
        while made < count:
            s = kind()
            if acceptable(s):
                corpus.append(s)
                made += 1
    # 4 long prompts: the cap-free path of long words, runs and repeated words
    corpus.append(words(3000))
    corpus.append("x" * 5000 + " " * 3000 + "!" * 2000)
    corpus.append("".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(4000)))
    corpus.append("\u0301" * 300 + "a" + "\u0323\u0301" * 200)
    out = sys.stdout.buffer
    for s in corpus:
        out.write(escape(s).encode("utf-8") + b"\n")
    sys.stderr.write("%d prompts\n" % len(corpus))


main()
