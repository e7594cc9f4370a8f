"""Save/load: one file, no code execution, every setting kept."""

import json

import numpy as np
import pytest

import flowprior as fp


def test_round_trip_maf(maf, tmp_path):
    path = tmp_path / "post.flow"
    maf.save(path)
    back = fp.load(path)
    u = np.random.default_rng(0).uniform(size=(100, 3))
    assert np.array_equal(back(u), maf(u))
    assert np.array_equal(back.log_prob(maf(u)), maf.log_prob(maf(u)))
    assert back.bounds_ == maf.bounds_ == [(0.0, 1.0), (-5.0, None), (None, None)]
    assert back.names_ == ["a", "b", "c"]
    assert back.get_params() == maf.get_params()
    assert back.record_.best_epoch == maf.record_.best_epoch
    assert type(back) is fp.MAF


def test_round_trip_piecewise(piecewise, tmp_path):
    path = tmp_path / "pw.flow"
    piecewise.save(path)
    back = fp.load(path)
    assert type(back) is fp.PiecewiseFlow
    assert np.array_equal(back.weights_, piecewise.weights_)
    u = np.random.default_rng(1).uniform(size=(100, 2))
    assert np.array_equal(back(u), piecewise(u))
    assert back.silhouette_ == piecewise.silhouette_
    assert back.get_params()["overlap"] == piecewise.overlap == 2.0


def test_file_holds_no_pickle(maf, tmp_path):
    path = tmp_path / "post.flow"
    maf.save(path)
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    meta = json.loads(header["__metadata__"]["flowprior"])
    assert meta["format"] == "flowprior" and meta["class"] == "MAF"
    assert b"\x80\x04" not in raw[: 8 + header_len]  # no pickle protocol marker in the header


def test_foreign_and_corrupt_files(maf, tmp_path):
    with pytest.raises(FileNotFoundError):
        fp.load(tmp_path / "missing.flow")
    junk = tmp_path / "junk.flow"
    junk.write_bytes(b"not a flow at all, just bytes" * 10)
    with pytest.raises(ValueError, match="not a flowprior flow file"):
        fp.load(junk)
    from safetensors.numpy import save_file

    other = tmp_path / "other.safetensors"
    save_file({"w": np.zeros(3)}, str(other))
    with pytest.raises(ValueError, match="without flowprior metadata"):
        fp.load(other)
    good = tmp_path / "good.flow"
    maf.save(good)
    raw = bytearray(good.read_bytes())
    truncated = tmp_path / "truncated.flow"
    truncated.write_bytes(bytes(raw[: len(raw) // 2]))
    with pytest.raises(ValueError, match="not a flowprior flow file|corrupt"):
        fp.load(truncated)
