"""A decoder run in two parts: its bottom layers 0..F-1, then layers F..N-1 from their output.

    ids -> [embeddings, layers 0..F-1] -> hidden state F -> [layers F..N-1, final norm]
           `bottom`                                         `top`

Training reads hidden state F of each item from a cache (train/frozen.py); an ensemble whose
heads share their bottom layers runs them once per batch for all of them (predict/head.py). The
same modules run the same operations either way: only where the hidden state enters layer F is
the decoder cut. Written by hand because transformers has no call for "from layer F on"; the
decoder's own forward still builds the mask and positions and applies the final norm.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def only_layers(decoder, start: int, stop: int):
    """Inside: the decoder runs only its layers start..stop-1 (the same modules, so hooks, LoRA
    and weights are theirs); its own forward does the mask, positions and final norm."""
    layers = decoder.layers
    decoder.layers = nn.ModuleList(list(layers)[start:stop])
    try:
        yield
    finally:
        decoder.layers = layers


def bottom_states(decoder, first: int, states: list[int], input_ids, attention_mask) -> list:
    """Hidden states `states` (each 1..first: state s is the output of layer s-1, before the final
    norm) for a batch, running only layers 0..first-1."""
    grabbed = []

    def keep(module, args, output):  # returns None: the output goes on unchanged
        grabbed.append(output[0] if isinstance(output, tuple) else output)

    hooks = [decoder.layers[s - 1].register_forward_hook(keep) for s in states]
    try:
        with only_layers(decoder, 0, first):
            decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    finally:
        for hook in hooks:
            hook.remove()
    return grabbed


def bottom(decoder, first: int, input_ids, attention_mask) -> torch.Tensor:
    """Hidden state `first` (the output of layer first-1, before the final norm) for a batch."""
    return bottom_states(decoder, first, [first], input_ids, attention_mask)[0]


def top(decoder, first: int, hidden: torch.Tensor, attention_mask, position_ids=None,
        output_hidden_states: bool = False):
    """The decoder's output from hidden state `first` on: its `hidden_states` (when asked) are
    the whole decoder's from index `first` (state `first` itself first, the final norm's last)."""
    with only_layers(decoder, first, len(decoder.layers)):
        return decoder(inputs_embeds=hidden, attention_mask=attention_mask,
                       position_ids=position_ids, use_cache=False,
                       output_hidden_states=output_hidden_states)


def _bytes(tensor: torch.Tensor):
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()


def bottom_fingerprint(decoder, first: int) -> str:
    """sha256 of every weight and buffer of the decoder but those of layers `first` and above:
    two decoders with the same fingerprint compute the same hidden state `first`."""
    import hashlib

    weights = hashlib.sha256()
    above = tuple(f"layers.{i}." for i in range(first, len(decoder.layers)))
    for name, tensor in [*decoder.named_parameters(), *decoder.named_buffers()]:
        if not name.startswith(above):
            weights.update(name.encode() + b"\0")
            weights.update(_bytes(tensor))
    return weights.hexdigest()
