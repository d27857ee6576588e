"""Memory: reclaim it, ask how much is free, size batches from it, report experiments. Introduced in notebook 01."""

import gc

import torch

from helpers import config


def reclaim(verbose: bool = True) -> None:
    """Collect garbage, empty the CUDA cache and, on a GPU, print what came back; ``del learn`` first (notebook 01)."""
    before = torch.cuda.memory_allocated() if torch.cuda.is_available() else 0
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        if verbose:
            after = torch.cuda.memory_allocated()
            print(f"reclaimed {(before - after) / 2**20:,.1f} MB of GPU memory; "
                  f"{after / 2**20:,.1f} MB still allocated, {gpu_mem_free():,} MB free")


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is the device running out of memory: ``torch.OutOfMemoryError`` on CUDA; MPS and the CPU
    allocator say it in words (notebook 01)."""
    text = str(err)
    return isinstance(err, torch.OutOfMemoryError) or (
        isinstance(err, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text))


def gpu_mem_free() -> int:
    """Free GPU memory in MB on the current device, 0 without CUDA (notebook 01)."""
    if not torch.cuda.is_available():
        return 0
    return torch.cuda.mem_get_info()[0] // 2**20  # (free, total) bytes


def batch_size_for(table: dict[int, int], default: int) -> int:
    """Batch size from free GPU memory, like the lesson's ``bs = 8 if free > 8200 else 4`` (notebook 01): ``table`` maps
    free MB to a batch size (the smallest if none fits); no CUDA: ``default``; a smoke run: at most ``SMOKE_BS``."""
    free = gpu_mem_free()
    if not torch.cuda.is_available():
        bs, why = default, "no GPU"
    else:
        fitting = [bs for mb, bs in sorted(table.items()) if free >= mb]
        bs, why = fitting[-1] if fitting else min(table.values()), f"have {free:,} MB of GPU memory free"
    if config.smoke() and bs > config.SMOKE_BS:
        bs, why = config.SMOKE_BS, f"smoke run; {why}"
    print(f"batch size {bs} ({why})")
    return bs


def experiment(cell_logger: bool = False):
    """Start an ipyexperiments report (GPU or CPU); ``exp = None`` prints the usage since (notebook 01)."""
    from ipyexperiments import IPyExperimentsCPU, IPyExperimentsPytorch
    return (IPyExperimentsPytorch if torch.cuda.is_available() else IPyExperimentsCPU)(cl_enable=cell_logger)
