"""The engine: device, loaders, train/evaluate per preset, checkpoints, resume, export, DDP."""

from __future__ import annotations

import json
import os
import socket

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchvision")

from torch.utils.data import Dataset  # noqa: E402

import synthgen  # noqa: E402
from synthgen.detect import engine  # noqa: E402
from synthgen.detect.checkpoint import (  # noqa: E402
    export,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from synthgen.detect.models import get_spec  # noqa: E402
from synthgen.errors import ConfigError  # noqa: E402

SIZE = 32
TINY_AE = {"channels": (8, 8, 16, 16, 16), "latent": 8}
CPU = torch.device("cpu")


class SquareDataset(Dataset):
    """Tiny samples in the batch contract: odd indices carry a bright square 'defect'."""

    def __init__(self, n: int, size: int = SIZE, seed: int = 0, good_only: bool = False):
        g = torch.Generator().manual_seed(seed)
        self.images = 0.3 + 0.2 * torch.rand(n, 3, size, size, generator=g)
        self.masks = torch.zeros(n, 1, size, size)
        self.labels = torch.zeros(n, dtype=torch.int64)
        self.boxes = [torch.zeros(0, 4) for _ in range(n)]
        for i in range(n):
            if good_only or i % 2 == 0:
                continue
            y, x = torch.randint(2, size - 10, (2,), generator=g).tolist()
            self.images[i, :, y : y + 8, x : x + 8] = 1.0
            self.masks[i, :, y : y + 8, x : x + 8] = 1.0
            self.labels[i] = 1
            self.boxes[i] = torch.tensor([[x, y, x + 8, y + 8]], dtype=torch.float32)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {
            "image": self.images[i],
            "mask": self.masks[i],
            "label": self.labels[i],
            "boxes": self.boxes[i],
            "classes": torch.zeros(len(self.boxes[i]), dtype=torch.int64),
            "index": i,
        }


def loader(dataset, batch_size=4, shuffle=False):
    return engine.make_loader(dataset, batch_size, shuffle=shuffle, device=CPU)


def tiny_config(name: str) -> dict:
    return dict(TINY_AE) if get_spec(name).kind == "anomaly" else {}


# -- device and data -------------------------------------------------------------------------
def test_pick_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert engine.pick_device().type == expected
    assert engine.pick_device("cpu") == CPU
    with pytest.raises(ConfigError, match="device"):
        engine.pick_device("tpu:0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            engine.pick_device("cuda:0")
    assert isinstance(engine.autocast(CPU), type(engine.autocast(CPU)))


def test_loader_yields_the_batch_contract():
    batch = next(iter(loader(SquareDataset(6), batch_size=4)))
    assert batch["image"].shape == (4, 3, SIZE, SIZE) and batch["image"].dtype == torch.float32
    assert batch["mask"].shape == (4, 1, SIZE, SIZE)
    assert batch["label"].tolist() == [0, 1, 0, 1] and batch["label"].dtype == torch.int64
    assert batch["index"].tolist() == [0, 1, 2, 3]
    assert isinstance(batch["boxes"], list) and batch["boxes"][1].shape == (1, 4)
    assert batch["classes"][0].shape == (0,)
    assert not engine.make_loader(SquareDataset(2), 2, device=CPU).pin_memory


# -- train and evaluate every preset ---------------------------------------------------------
@pytest.mark.parametrize("name", ["ae_l2", "ae_ssim", "resnet18", "densenet121"])
def test_every_preset_trains_one_epoch_and_evaluates(name):
    spec = get_spec(name)
    torch.manual_seed(0)
    model = spec.make(**tiny_config(name))
    size = SIZE if spec.kind == "anomaly" else 64
    train = SquareDataset(8, size, good_only=spec.needs == "good images only")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss = engine.train_one_epoch(model, spec, loader(train, shuffle=True), opt, CPU)
    assert np.isfinite(loss) and loss > 0
    out = engine.evaluate(model, spec, loader(SquareDataset(6, size, seed=1)), CPU)
    assert out["labels"].tolist() == [0, 1, 0, 1, 0, 1]
    assert out["index"].tolist() == list(range(6))
    assert out["scores"].shape == (6,) and out["scores"].dtype == np.float32
    assert np.isfinite(out["loss"])
    if spec.kind == "classifier":
        assert out["probabilities"].shape == (6, 2)
        np.testing.assert_allclose(out["probabilities"].sum(axis=1), 1.0, rtol=1e-5)
        assert set(out["predictions"].tolist()) <= {0, 1}
    else:
        assert out["maps"].shape == (6, size, size) and out["masks"].shape == (6, size, size)
        assert out["masks"][1].sum() == 64 and out["masks"][0].sum() == 0


def test_train_one_epoch_reports_a_diverging_loss():
    spec = get_spec("ae_l2")
    model = spec.make(**TINY_AE)
    opt = torch.optim.SGD(model.parameters(), lr=1e30)
    data = loader(SquareDataset(16, good_only=True))
    with pytest.raises(FloatingPointError, match="learning rate"):
        for _ in range(3):
            engine.train_one_epoch(model, spec, data, opt, CPU)


# -- checkpoints -----------------------------------------------------------------------------
def test_checkpoint_round_trip(tmp_path):
    spec = get_spec("ae_l2")
    torch.manual_seed(0)
    model = spec.make(**TINY_AE)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    engine.train_one_epoch(model, spec, loader(SquareDataset(8, good_only=True)), opt, CPU)
    config = spec.config(TINY_AE)
    path = save_checkpoint(tmp_path / "run" / "last.pt", model, spec="ae_l2", epoch=3,
                           config=config, optimizer=opt, metrics={"history": [{"loss": 0.5}]})
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temp file left
    fresh = spec.make(**TINY_AE)
    fresh_opt = torch.optim.Adam(fresh.parameters(), lr=1e-3)
    ckpt = load_checkpoint(path, fresh, fresh_opt)
    assert ckpt["epoch"] == 3 and ckpt["spec"] == "ae_l2"
    assert ckpt["synthgen_version"] == synthgen.__version__
    assert ckpt["metrics"] == {"history": [{"loss": 0.5}]}
    assert ckpt["config"]["channels"] == (8, 8, 16, 16, 16)
    for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert fresh_opt.state_dict()["state"][0]["step"] == opt.state_dict()["state"][0]["step"]
    rebuilt, _ = load_model(path)
    x = torch.rand(2, 3, SIZE, SIZE)
    assert torch.equal(rebuilt(x), model.eval()(x))
    with pytest.raises(ConfigError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("name", ["resnet18", "ae_ssim"])
def test_torchscript_export_gives_the_same_outputs(tmp_path, name):
    torch.manual_seed(0)
    model = get_spec(name).make(**tiny_config(name)).eval()
    example = torch.rand(2, 3, 64, 64)
    path = export(model, tmp_path / f"{name}.pt", example)
    loaded = torch.jit.load(str(path))
    x = torch.rand(3, 3, 64, 64)
    torch.testing.assert_close(loaded(x), model(x))
    if name == "ae_ssim":
        scripted = torch.jit.load(str(export(model, tmp_path / "score.pt", example, "score")))
        scores, maps = scripted(x)
        ref_scores, ref_maps = model.score(x)
        torch.testing.assert_close(scores, ref_scores)
        torch.testing.assert_close(maps, ref_maps)


# -- fit and resume --------------------------------------------------------------------------
def _fit(out_dir, epochs, resume=False, name="ae_l2", **kw):
    return engine.fit(name, SquareDataset(12, good_only=True), SquareDataset(4, seed=1),
                      out_dir=out_dir, epochs=epochs, batch_size=4, lr=1e-3, device="cpu",
                      seed=7, resume=resume, config=TINY_AE, **kw)


def test_fit_writes_checkpoints_and_resumes_where_it_stopped(tmp_path):
    first = _fit(tmp_path / "run", epochs=1)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1
    assert (tmp_path / "run" / "best.pt").is_file()
    resumed = _fit(tmp_path / "run", epochs=2, resume=True)
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["epoch"] == 2 and resumed.epochs == 2
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    assert resumed.history[0] == first.history[0]
    assert json.loads((tmp_path / "run" / "history.json").read_text()) == resumed.history
    # 12 images, batch 4: 3 Adam steps per epoch, and the step count carried over.
    assert ckpt["optimizer"]["state"][0]["step"] == 6
    # Resuming gives the same weights as an uninterrupted run (same batches, same state).
    straight = _fit(tmp_path / "straight", epochs=2)
    for (key, a), b in zip(resumed.model.state_dict().items(),
                           straight.model.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, msg=key)
    # A finished run returns at once; a different preset cannot resume from this folder.
    assert _fit(tmp_path / "run", epochs=2, resume=True).history == resumed.history
    with pytest.raises(ConfigError, match="cannot resume"):
        engine.fit("resnet18", SquareDataset(4), out_dir=tmp_path / "run", epochs=3,
                   device="cpu", resume=True)


def test_fit_runs_the_fit_after_hook_and_metrics_fn(tmp_path):
    seen = []

    def metrics_fn(kind, outputs):
        seen.append(kind)
        return {"n_val": len(outputs["scores"])}

    result = engine.fit("ae_l2", SquareDataset(8, good_only=True), SquareDataset(4, seed=1),
                        out_dir=tmp_path, epochs=1, batch_size=4, device="cpu",
                        config={**TINY_AE, "kde": True}, metrics_fn=metrics_fn)
    assert seen == ["anomaly"] and result.history[0]["n_val"] == 4
    assert float(result.model.kde_stats[5]) == 1.0 and result.model.kde_codes.shape[0] == 8


# -- DDP -------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    result = engine.fit("ae_l2", SquareDataset(16, good_only=True), None, out_dir=out_dir,
                        epochs=1, batch_size=4, lr=1e-2, device="cpu", seed=3, config=TINY_AE)
    params = {k: v.detach().clone() for k, v in result.model.named_parameters()}
    torch.save(params, os.path.join(out_dir, f"params_rank{rank}.pt"))


@pytest.mark.slow
def test_ddp_two_gloo_processes_end_with_identical_parameters(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    p0 = torch.load(tmp_path / "params_rank0.pt")
    p1 = torch.load(tmp_path / "params_rank1.pt")
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 1 and len(ckpt["metrics"]["history"]) == 1
    torch.manual_seed(3)
    init = get_spec("ae_l2").make(**TINY_AE)
    changed = False
    for key, value in p0.items():
        torch.testing.assert_close(p1[key], value, rtol=0, atol=0, msg=key)
        torch.testing.assert_close(ckpt["model"][key], value, rtol=0, atol=0, msg=key)
        changed |= not torch.equal(value, dict(init.named_parameters())[key])
    assert changed  # it trained
    # Each rank saw half of the 16 images: 2 steps each, so the optimizer made 2 steps.
    assert ckpt["optimizer"]["state"][0]["step"] == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_on_cuda_with_bf16_autocast(tmp_path):
    for name in ("ae_ssim", "resnet18"):
        size = SIZE if name == "ae_ssim" else 64
        result = engine.fit(name, SquareDataset(8, size, good_only=name == "ae_ssim"),
                            SquareDataset(4, size, seed=1), out_dir=tmp_path / name, epochs=1,
                            batch_size=4, device="cuda", config=tiny_config(name))
        assert next(result.model.parameters()).device.type == "cuda"
        assert np.isfinite(result.history[0]["train_loss"])
        assert np.isfinite(result.history[0]["val_loss"])


def test_a_checkpoint_saved_before_an_option_existed_loads_with_its_legacy_value(tmp_path):
    """ae_* checkpoints from before ``score_smooth`` keep scoring by the unsmoothed quantile."""
    spec = get_spec("ae_ssim")
    config = spec.config({"channels": (8, 8, 16, 16, 16), "latent": 8})
    model = spec.build(config)
    old = {k: v for k, v in config.items() if k != "score_smooth"} | {"score_quantile": 0.999}
    rebuilt, _ = load_model(save_checkpoint(tmp_path / "old.pt", model, spec="ae_ssim",
                                            epoch=1, config=old))
    assert rebuilt.score_smooth == 0.0 and rebuilt.score_quantile == 0.999
    current, _ = load_model(save_checkpoint(tmp_path / "new.pt", model, spec="ae_ssim",
                                            epoch=1, config=config))
    assert current.score_smooth == pytest.approx(21 / 256) and current.score_quantile == 1.0
