"""Quantize -> dequantize round trips on real trained weights (the two llama2.c
checkpoints of the data folder), with gguf-py (llama.cpp's Python package) as the
independent dequantizer.

`wgllm quantize IN OUT TYPE --pure` puts every matrix in TYPE; each 2-D tensor of the
output is dequantized with gguf.quants.dequantize and compared with the F32 original:
relative rms error ||deq - orig|| / ||orig|| within the bound of the type the tensor
actually got. These models' rows are 64, 172 and 512 wide, so no matrix is a whole
256-block: the k-types fall back per tensor (llama.cpp's tensor_type_fallback, with
q4_0 where llama.cpp would take iq4_nl), and the 172-wide rows (ffn_down) are not even
whole 32-blocks, so they go to f16. To round-trip the k-types themselves on the same
real values, a copy of each model with every matrix laid out as rows of 256 (the same
values in the same order) is quantized as well.

Also checked: the tensor types are the expected ones, byte sizes are n_blocks * block
bytes, 1-D tensors (norms) stay F32 bit for bit, f16 tensors are exactly numpy's
round-to-nearest f16, and the legacy types are never worse than gguf-py's own
quantizer (llama.cpp's reference rounding) on the same tensor.
"""

import numpy as np
import pytest

import gguf

Q = gguf.GGMLQuantizationType
MODELS = ["aidreams260K", "stories260K"]
LEGACY = ["q8_0", "q5_1", "q5_0", "q4_1", "q4_0"]
K_TYPES = ["q6_k", "q5_k", "q4_k", "q3_k", "q2_k"]

# Elements per block and bytes per block (llama.cpp's block structs): a scale (and a
# min for the _1 types) in f16 plus the packed codes; the k-types' 256-superblocks
# add their 6/8-bit sub-block scales.
BLOCK = {
    Q.F32: (1, 4), Q.F16: (1, 2),
    Q.Q8_0: (32, 34), Q.Q5_1: (32, 24), Q.Q5_0: (32, 22), Q.Q4_1: (32, 20), Q.Q4_0: (32, 18),
    Q.Q6_K: (256, 210), Q.Q5_K: (256, 176), Q.Q4_K: (256, 144), Q.Q3_K: (256, 110), Q.Q2_K: (256, 84),
}

# Type a --pure TYPE gives a row of n_per_row values: TYPE itself where the row is a whole
# number of its blocks, else the fallback (k-types), else f16 (not a whole 32-block).
K_FALLBACK = {"q6_k": Q.Q8_0, "q5_k": Q.Q5_1, "q4_k": Q.Q5_0, "q3_k": Q.Q4_0, "q2_k": Q.Q4_0}


def expected_type(qtype, n_per_row):
    t = Q[qtype.upper()]
    if n_per_row % BLOCK[t][0] == 0:
        return t
    t = K_FALLBACK.get(qtype, t)
    return t if n_per_row % BLOCK[t][0] == 0 else Q.F16


# Bounds on the relative rms error per tensor, by the type the tensor got.
#
# Why these sizes: each block stores codes of b bits on a grid of step d set by the
# block's range, and rounding to the grid leaves an error spread uniformly over one
# step, rms d / sqrt(12). Symmetric types (q8_0, q5_0, q4_0, q6_k, q3_k) take
# d = amax / 2^(b-1); the min+scale ones (q5_1, q4_1, q5_k, q4_k, q2_k) take
# d = (max - min) / (2^b - 1). In the worst tensors of these checkpoints (attention
# matrices with outliers) a block's amax is about 3.2x the tensor's rms over blocks of
# 32 and 2.6x over the k-types' sub-blocks of 16, so relative rms ~ 3.2 / (2^(b-1) sqrt(12)):
# q8_0 0.7%, 5-bit ~5%, 4-bit ~10%, q6_k 2.3%, q3_k 19%, and q2_k (range ~3.6x rms over
# 16 values, 4 levels) ~35%. f16 rounds to nearest with 11 significant bits:
# |error| <= 2^-11 |x| for every normal x, so the relative rms is below 2^-11.
#
# Measured worst tensor, aidreams260K / stories260K (the k-types on the rows-of-256
# copies; blk.*.attn_q / attn_v but for aidreams q4_k, blk.1.attn_output):
#   q8_0 0.0056 / 0.0072   q5_1 0.0392 / 0.0465   q5_0 0.0454 / 0.0571
#   q4_1 0.0802 / 0.0951   q4_0 0.0897 / 0.1143   q6_k 0.0186 / 0.0235
#   q5_k 0.0371 / 0.0455   q4_k 0.0739 / 0.0895   q3_k 0.1576 / 0.1864
#   q2_k 0.3082 / 0.3481   f16  0.0002 / 0.0002 (the 172-wide ffn_down rows)
# The bounds are the worse of the two times 1.5 (f16: the rounding bound itself).
BOUNDS = {
    Q.Q8_0: 0.011, Q.Q5_1: 0.07, Q.Q5_0: 0.085, Q.Q4_1: 0.14, Q.Q4_0: 0.17,
    Q.Q6_K: 0.035, Q.Q5_K: 0.068, Q.Q4_K: 0.135, Q.Q3_K: 0.28, Q.Q2_K: 0.52,
    Q.F16: 2.0 ** -11,
}


def rel_rms(ours, ref):
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


def source_path(shared, model):
    path = shared / "models" / f"{model}-f32.gguf"
    assert path.is_file(), f"missing {path}"
    return path


@pytest.fixture(scope="module")
def sources(shared, scratch):
    """sources(model, layout) -> F32 GGUF: "stored" as trained, "rows256" with every
    matrix re-laid as rows of 256 (the same values in order), written by gguf-py."""
    cache = {}

    def make(model, layout):
        key = (model, layout)
        if key not in cache:
            src = source_path(shared, model)
            if layout == "stored":
                cache[key] = src
            else:
                out = scratch / f"{model}-rows256.gguf"
                w = gguf.GGUFWriter(str(out), "llama")
                for t in gguf.GGUFReader(str(src)).tensors:
                    assert t.tensor_type == Q.F32, f"{t.name}: {t.tensor_type.name}"
                    data = np.array(t.data, dtype=np.float32)
                    if len(t.shape) >= 2:
                        assert data.size % 256 == 0, t.name
                        data = data.reshape(-1, 256)
                    w.add_tensor(t.name, data)
                w.write_header_to_file()
                w.write_kv_data_to_file()
                w.write_tensors_to_file()
                w.close()
                cache[key] = out
        return cache[key]

    return make


@pytest.fixture(scope="module")
def quantized(wgllm, sources, scratch):
    cache = {}

    def make(model, layout, qtype):
        key = (model, layout, qtype)
        if key not in cache:
            out = scratch / f"{model}-{layout}-{qtype}.gguf"
            wgllm.ok("quantize", sources(model, layout), out, qtype, "--pure", "--threads", "2",
                     timeout=60)
            cache[key] = out
        return cache[key]

    return make


def round_trip(src, out, qtype):
    """Checks every tensor of OUT against SRC; returns {tensor name: (type, rel rms)} of the
    quantized matrices."""
    orig = {t.name: t for t in gguf.GGUFReader(str(src)).tensors}
    quant = {t.name: t for t in gguf.GGUFReader(str(out)).tensors}
    assert sorted(quant) == sorted(orig)
    errors = {}
    for name, q in quant.items():
        o = orig[name]
        shape = [int(n) for n in o.shape]
        assert [int(n) for n in q.shape] == shape, name
        ref = np.asarray(o.data, dtype=np.float32).reshape(-1)
        if len(shape) == 1:
            assert q.tensor_type == Q.F32, f"{name}: {q.tensor_type.name}"
            assert np.array_equal(np.asarray(q.data).view(np.uint32).reshape(-1), ref.view(np.uint32)), name
            continue

        want = expected_type(qtype, shape[0])
        assert q.tensor_type == want, f"{name} (rows of {shape[0]}): {q.tensor_type.name}, expected {want.name}"
        block, nbytes = BLOCK[want]
        assert ref.size % block == 0, name
        assert int(q.n_bytes) == ref.size // block * nbytes, f"{name}: {q.n_bytes} bytes"
        assert np.asarray(q.data).nbytes == int(q.n_bytes), name

        deq = gguf.quants.dequantize(np.asarray(q.data), want).astype(np.float64).reshape(-1)
        assert deq.size == ref.size and np.all(np.isfinite(deq)), name
        err = rel_rms(deq, ref.astype(np.float64))
        assert err <= BOUNDS[want], f"{name} {want.name}: relative rms error {err:.4f} > {BOUNDS[want]}"
        errors[name] = (want, err)

        if want == Q.F16:
            assert np.array_equal(deq, ref.astype(np.float16).astype(np.float64)), name
        elif want in (Q.Q8_0, Q.Q5_1, Q.Q5_0, Q.Q4_1, Q.Q4_0):
            # gguf-py's quantizer is llama.cpp's reference rounding: ours must not be worse.
            ref_q = gguf.quants.quantize(ref.reshape(shape[::-1]), want)
            ref_err = rel_rms(gguf.quants.dequantize(ref_q, want).astype(np.float64).reshape(-1),
                              ref.astype(np.float64))
            assert err <= ref_err * 1.001 + 1e-9, f"{name} {want.name}: {err:.5f} vs reference {ref_err:.5f}"
    return errors


@pytest.mark.parametrize("qtype", LEGACY + K_TYPES)
@pytest.mark.parametrize("model", MODELS)
def test_round_trip_trained_layout(quantized, sources, model, qtype):
    """The checkpoints as trained: k-types fall back per tensor, checked by actual type."""
    errors = round_trip(sources(model, "stored"), quantized(model, "stored", qtype), qtype)
    got = {t for t, _ in errors.values()}
    # every matrix that is a whole number of 32-blocks got a quantized type, the others f16
    assert Q.F16 in got and len(got - {Q.F16}) == 1, sorted(t.name for t in got)


@pytest.mark.parametrize("qtype", K_TYPES)
@pytest.mark.parametrize("model", MODELS)
def test_round_trip_k_types_rows256(quantized, sources, model, qtype):
    """The same trained values as rows of 256: every matrix in the k-type itself."""
    errors = round_trip(sources(model, "rows256"), quantized(model, "rows256", qtype), qtype)
    assert len(errors) > 0 and {t for t, _ in errors.values()} == {Q[qtype.upper()]}
