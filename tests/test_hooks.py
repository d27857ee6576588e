"""helpers.hooks: outputs kept with or without their graph, and hooks that always come off."""
import gc

import torch
from torch import nn

from helpers.hooks import Hooks


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 3))


def n_hooks(model):
    return sum(len(m._forward_hooks) for m in model.modules())


def test_stores_each_modules_latest_output():
    model = net()
    x = torch.randn(2, 4)
    with Hooks([model[0], model[2]]) as hooks:
        out = model(x)
        first, last = hooks.stored
    assert torch.equal(first, model[0](x)) and torch.equal(last, out)


def test_detach_or_keep_the_graph():
    model, x = net(), torch.randn(2, 4)
    with Hooks([model[0]]) as detached, Hooks([model[0]], detach=False) as attached:
        model(x)
        assert detached.stored[0].grad_fn is None
        attached.stored[0].sum().backward()  # gradients flow back into the model
    assert model[0].weight.grad is not None and model[2].weight.grad is None


def test_the_with_block_remove_and_deletion_take_the_hooks_off():
    model = net()
    with Hooks([model[0], model[1]]):
        assert n_hooks(model) == 2
    assert n_hooks(model) == 0
    hooks = Hooks([model[0]])
    model(torch.randn(1, 4))
    hooks.remove()
    hooks.remove()  # twice is fine
    assert n_hooks(model) == 0 and hooks.stored == [None]
    Hooks([model[2]])  # dropped at once: its hooks go with it, the model does not keep it alive
    gc.collect()
    assert n_hooks(model) == 0


def test_clear_forgets_the_outputs():
    model = net()
    hooks = Hooks([model[0]])
    model(torch.randn(1, 4))
    hooks.clear()
    assert hooks.stored == [None] and n_hooks(model) == 1
