"""SyntheticBank: generation, resume after a crash, multi-process generation, and refusal of damaged banks."""

import json
import pickle

import numpy as np
import pytest
import torch

import synthaug.bank as bank_module
from synthaug.bank import BankError, SyntheticBank


def _files(path):
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_bank_contents(digits_bank, digits_generator):
    assert len(digits_bank) == 400 and digits_bank.class_counts() == [40] * 10 and digits_bank.image_shape == (1, 8, 8)
    assert digits_bank.class_names == digits_generator.class_names
    image, label = digits_bank[45]
    assert image.dtype == torch.uint8 and image.shape == (1, 8, 8) and label == 1
    picks = torch.tensor([399, 0, 64, 65, 200])
    assert torch.equal(digits_bank.images(picks), torch.stack([digits_bank[i][0] for i in picks.tolist()]))
    assert torch.equal(digits_bank.indices_of(3), torch.arange(120, 160))
    manifest = json.loads((digits_bank.path / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["generator"]["family"] == "vae" and len(manifest["shards"]) == 7


def test_same_request_reopens_and_other_request_is_refused(digits_bank, digits_generator):
    again = SyntheticBank.generate(digits_generator, path=digits_bank.path, per_class=40, shard_size=64)
    assert again.sha256 == digits_bank.sha256
    with pytest.raises(BankError, match="seed differ"):
        SyntheticBank.generate(digits_generator, path=digits_bank.path, per_class=40, shard_size=64, seed=1)


def test_counts_per_class(digits_generator, tmp_path):
    bank = SyntheticBank.generate(digits_generator, path=tmp_path, counts={2: 5, 7: 3}, shard_size=4)
    assert bank.class_counts() == [0, 0, 5, 0, 0, 0, 0, 3, 0, 0] and bank.labels.tolist() == [2] * 5 + [7] * 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({}, "exactly one of"), ({"per_class": 0}, "per_class must be >= 1"), ({"counts": {12: 3}}, r"classes \[12\]"),
     ({"counts": [1, 2]}, "2 entries for 10 classes"), ({"per_class": 2, "shard_size": 0}, "shard_size")],
)  # fmt: skip
def test_bad_requests(digits_generator, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        SyntheticBank.generate(digits_generator, path=tmp_path, **kwargs)


class _Crash(Exception):
    pass


def test_interrupted_generation_resumes_to_the_same_bytes(digits_generator, tmp_path):
    opts = {"per_class": 10, "shard_size": 16, "batch_size": 8, "seed": 3}
    whole = SyntheticBank.generate(digits_generator, path=tmp_path / "whole", **opts)

    calls = {"n": 0}
    real_sample = digits_generator.sample

    def crash_after_two_shards(labels, *, generator=None, **options):
        calls["n"] += 1
        if calls["n"] > 4:  # two shards of 16, sampled in batches of 8
            raise _Crash
        return real_sample(labels, generator=generator, **options)

    digits_generator.sample = crash_after_two_shards
    try:
        with pytest.raises(_Crash):
            SyntheticBank.generate(digits_generator, path=tmp_path / "resumed", **opts)
    finally:
        del digits_generator.sample
    shards = tmp_path / "resumed" / "shards"
    assert sorted(p.name for p in shards.glob("*.npy")) == [f"0000{i}.{k}.npy" for i in (0, 1) for k in ("images", "labels")]
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    with pytest.raises(BankError, match="resume"):
        SyntheticBank.open(tmp_path / "resumed")

    sampled = []
    digits_generator.sample = lambda labels, *, generator=None, **o: sampled.append(len(labels)) or real_sample(labels, generator=generator, **o)
    try:
        resumed = SyntheticBank.generate(digits_generator, path=tmp_path / "resumed", **opts)
    finally:
        del digits_generator.sample
    assert sum(sampled) == 100 - 32, "finished shards must not be sampled again"
    assert _files(whole.path) == _files(resumed.path)


def test_two_process_generation_writes_the_same_bank(digits_generator, tmp_path):
    opts = {"per_class": 6, "shard_size": 8, "seed": 1}
    single = SyntheticBank.generate(digits_generator, path=tmp_path / "one", **opts)
    double = SyntheticBank.generate(
        digits_generator, path=tmp_path / "two", accelerator="cpu", devices=2, strategy="ddp_spawn", **opts
    )
    assert _files(single.path) == _files(double.path)


@pytest.fixture
def damaged(digits_generator, tmp_path):
    return SyntheticBank.generate(digits_generator, path=tmp_path, per_class=4, shard_size=16).path


def test_missing_shard(damaged):
    (damaged / "shards" / "00001.images.npy").unlink()
    with pytest.raises(BankError, match="missing"):
        SyntheticBank.open(damaged)


def test_truncated_shard(damaged):
    file = damaged / "shards" / "00000.images.npy"
    file.write_bytes(file.read_bytes()[:-10])
    with pytest.raises(BankError, match="truncated"):
        SyntheticBank.open(damaged)


def test_modified_shard(damaged):
    file = damaged / "shards" / "00000.images.npy"
    blob = bytearray(file.read_bytes())
    blob[-1] ^= 0xFF
    file.write_bytes(bytes(blob))
    with pytest.raises(BankError, match="sha256"):
        SyntheticBank.open(damaged)
    assert len(SyntheticBank.open(damaged, verify=False)) == 40  # the size still matches


def _edit_manifest(path, edit, *, rehash=False):
    manifest = json.loads((path / "manifest.json").read_text())
    edit(manifest)
    if rehash:  # an editor who also recomputes the field checksums
        manifest["checksums"] = {k: bank_module._field_sha256(v) for k, v in manifest.items() if k != "checksums"}
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_manifest_sha_that_does_not_match(damaged):
    def zero_sha(m):
        m["shards"][0]["labels_sha256"] = "0" * 64

    _edit_manifest(damaged, zero_sha)
    with pytest.raises(BankError, match="field 'shards' does not match its checksum"):
        SyntheticBank.open(damaged)
    _edit_manifest(damaged, lambda m: None, rehash=True)  # checksums made to agree: the shard's sha256 still does not
    with pytest.raises(BankError, match="does not match the sha256"):
        SyntheticBank.open(damaged)


@pytest.mark.parametrize(
    ("edit", "field"),
    [(lambda m: m.update(total=m["total"] + 1), "total"),
     (lambda m: m["counts"].__setitem__(0, 5), "counts"),
     (lambda m: m["class_names"].reverse(), "class_names"),
     (lambda m: m["sample_options"].update(temperature=0.5), "sample_options")],
)  # fmt: skip
def test_any_manifest_edit_is_refused_naming_the_field(damaged, edit, field):
    _edit_manifest(damaged, edit)
    with pytest.raises(BankError, match=f"field '{field}' does not match its checksum"):
        SyntheticBank.open(damaged)


def test_counts_edited_with_checksums_recomputed_still_disagree_with_the_shards(damaged):
    def move_one(m):
        m["counts"][0], m["counts"][1] = 3, 5

    _edit_manifest(damaged, move_one, rehash=True)
    with pytest.raises(BankError, match=r"shards hold \[4, 4, .*manifest lists \[3, 5"):
        SyntheticBank.open(damaged)


def test_removed_checksums_are_refused(damaged):
    _edit_manifest(damaged, lambda m: m.pop("checksums"))
    with pytest.raises(BankError, match="no 'checksums' field"):
        SyntheticBank.open(damaged)


def test_sample_options_reach_the_samples_and_the_manifest(tmp_path, digits):
    import synthaug
    from tests.conftest import QUIET, TINY

    model = synthaug.fit(digits.subset(5, seed=0), "ddpm", out=tmp_path / "run", max_steps=2, batch_size=10, **QUIET,
                         **TINY["ddpm"])  # fmt: skip
    default = SyntheticBank.generate(model, path=tmp_path / "a", per_class=2)
    guided = SyntheticBank.generate(model, path=tmp_path / "b", per_class=2, sample_options={"steps": 3, "guidance": 1.5})
    manifest = json.loads((guided.path / "manifest.json").read_text())
    assert manifest["sample_options"] == {"steps": 3, "guidance": 1.5, "sampler": "dpm++2m", "eta": 0.0, "churn": 0.0}  # EDM's
    assert json.loads((default.path / "manifest.json").read_text())["sample_options"]["steps"] == TINY["ddpm"]["steps"]
    assert not torch.equal(default.images(range(20)), guided.images(range(20)))
    with pytest.raises(ValueError, match=r"no option\(s\) \['temperature'\]; its options are: churn, eta, feedback, feedback_criterion, feedback_scale, guidance, sampler, steps"):
        SyntheticBank.generate(model, path=tmp_path / "c", per_class=2, sample_options={"temperature": 0.5})
    with pytest.raises(BankError, match="sample_options differ"):
        SyntheticBank.generate(model, path=guided.path, per_class=2, sample_options={"steps": 4, "guidance": 1.5})


def test_not_a_bank(tmp_path):
    with pytest.raises(BankError, match="not a synthaug bank"):
        SyntheticBank.open(tmp_path)


def test_pickles_without_its_memory_maps(digits_bank):
    digits_bank[0]  # maps the shards
    assert len(pickle.dumps(digits_bank)) < 20_000  # labels and manifest, not the 400 images' maps


def test_to_hf_dataset(digits_bank):
    pytest.importorskip("datasets")
    ds = digits_bank.to_hf_dataset()
    assert len(ds) == 400 and ds.features["label"].names == list(digits_bank.class_names)
    assert all(ds["is_synthetic"]) and ds[45]["label"] == 1
    assert np.array_equal(np.array(ds[45]["image"]), digits_bank[45][0][0].numpy())


def test_select_is_a_consistent_view(digits_bank):
    picks = torch.tensor([5, 0, 17, 3, 120])
    view = digits_bank.select(picks)
    assert len(view) == 5 and torch.equal(view.labels, digits_bank.labels[picks])
    assert torch.equal(view.images([0, 4]), digits_bank.images([5, 120]))
    assert torch.equal(view[2][0], digits_bank[17][0]) and view[2][1] == digits_bank[17][1]
    assert sum(view.class_counts()) == 5 and view.sha256 != digits_bank.sha256
    nested = view.select([4, 1])
    assert torch.equal(nested.images([0, 1]), digits_bank.images([120, 0]))
    for c in range(view.num_classes):
        assert (view.labels[view.indices_of(c)] == c).all()
    with pytest.raises(IndexError, match="must lie in"):
        view.select([5])
