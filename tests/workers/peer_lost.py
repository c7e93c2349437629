"""Two gloo processes; rank 1 dies; rank 0 records what its next collectives raise and whether
``distributed.is_peer_failure`` recognises each. gloo raises bare RuntimeErrors: the test that
runs this proves the check does not depend on their wording. The processes are started here
(multiprocessing, torchrun's environment variables set by hand) rather than by torchrun, whose
agent would stop rank 0 as soon as it saw rank 1 fail.

    python peer_lost.py OUT.json
"""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import sys
import time


def rank_main(rank: int, port: int, out: str) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    import torch
    from torch import nn

    from headstart.core import distributed

    distributed.init("cpu")
    group = distributed.current()
    model = nn.parallel.DistributedDataParallel(nn.Linear(4, 2))
    model(torch.ones(3, 4)).sum().backward()
    group.barrier()
    if rank == 1:
        os._exit(3)  # as a killed process: no goodbye to the others
    time.sleep(0.5)
    seen = {}
    for name, step in (
        ("all_gather", lambda: group.all_gather(0)),
        ("sum", lambda: group.sum([1.0])),
        ("ddp_step", lambda: model(torch.ones(3, 4)).sum().backward()),
    ):
        try:
            step()
            seen[name] = None
        except Exception as e:
            seen[name] = {"type": type(e).__name__, "peer": distributed.is_peer_failure(e)}
    with open(out, "w") as f:
        json.dump(seen, f)
    os._exit(0)  # the group cannot be shut down cleanly without its peer


def main(out: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = multiprocessing.get_context("spawn")
    ranks = [ctx.Process(target=rank_main, args=(r, port, out)) for r in (0, 1)]
    for p in ranks:
        p.start()
    for p in ranks:
        p.join(240)


if __name__ == "__main__":
    main(sys.argv[1])
