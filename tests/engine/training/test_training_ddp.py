import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from fixtures.training_fakes import FakeDataset, model_cfg, train_cfg
from safetensors.torch import load_file, save_file

from sparsevit.training import train


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    # each rank seeds its gate noise identically but sees a different half of the data
    r = train(model_cfg(), FakeDataset(n=16), None, train_cfg(epochs=1, batch_size=4),
              out_dir=os.path.join(out, "run"))
    save_file({k: v.contiguous() for k, v in r.model.state_dict().items()},
              os.path.join(out, f"rank{rank}.safetensors"))
    dist.destroy_process_group()


def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a = load_file(str(tmp_path / "rank0.safetensors"))
    b = load_file(str(tmp_path / "rank1.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # training moved the weights, and only rank 0 wrote the checkpoint
    init = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert all(torch.equal(a[k], init[k]) for k in a)
    torch.manual_seed(3)
    from sparsevit.models import SparseViT
    fresh = SparseViT(model_cfg()).state_dict()
    assert not torch.equal(fresh["head.weight"], a["head.weight"])
